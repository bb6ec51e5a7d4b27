import { gunzipSync, gzipSync } from "node:zlib";

/**
 * Large values travel gzipped. A 10,000-site fleet's policy is ~2.8 MB of text, and a hub's part
 * with its compiled state as much again, past etcd's default request limit (1.5 MiB): gzipped
 * they are a fraction of it (the names, addresses and field names repeat; only the public keys do
 * not). etcd's JSON gateway carries strings, so the gzip is base64 text behind a mark no policy
 * or JSON value starts with; smaller values stay plain, readable with etcdctl.
 */
const MARK = "netpol-gzip-base64:";
const PACK_FROM = 64 * 1024;
/** The most a packed value may unpack to: a value written to exhaust an agent's memory is refused. */
const MAX_UNPACKED = 64 * 1024 * 1024;

/** `text` as it is written to etcd. */
export function pack(text: string): string {
  if (text.length < PACK_FROM) return text;
  return `${MARK}${gzipSync(text).toString("base64")}`;
}

/** A value read from etcd as the text that was packed; throws when a packed value is damaged. */
export function unpack(value: string): string {
  if (!value.startsWith(MARK)) return value;
  const gzipped = Buffer.from(value.slice(MARK.length), "base64");
  return gunzipSync(gzipped, { maxOutputLength: MAX_UNPACKED }).toString("utf8");
}
