// A home server that expects the PROXY protocol (v1 or v2) ahead of each connection, as a
// second proxy at home or a mail server with it enabled would: it answers with the header's
// version and the client address it carried (`v2 203.0.113.5`), as a line in answer to a raw
// TCP client's first line or as the body of an HTTP response, or `no header` for a connection
// without one.
// Started by tests inside a namespace: node proxy-protocol-server.mjs PORT
import net from "node:net";

const SIGNATURE = Buffer.from("0d0a0d0a000d0a515549540a", "hex");

/** An IPv6 address from its 16 bytes, written short (`2001:db8::80`). */
const ipv6 = (bytes) =>
  new URL(`http://[${(bytes.toString("hex").match(/.{4}/g) ?? []).join(":")}]/`).hostname.slice(
    1,
    -1,
  );

/** The header at the start of `buf`: its version, the client's address and its length; `none`
 * when the stream starts otherwise; undefined while too little has come to tell. */
function parse(buf) {
  const sig = SIGNATURE.subarray(0, Math.min(buf.length, SIGNATURE.length));
  if (buf.subarray(0, sig.length).equals(sig)) {
    if (buf.length < 16 || buf.length < 16 + buf.readUInt16BE(14)) return undefined;
    const family = buf[13] >> 4;
    const src =
      family === 1
        ? [...buf.subarray(16, 20)].join(".")
        : family === 2
          ? ipv6(buf.subarray(16, 32))
          : "unspec";
    return { version: "v2", src, length: 16 + buf.readUInt16BE(14) };
  }
  const text = buf.toString("latin1");
  if (text.startsWith("PROXY ")) {
    const end = text.indexOf("\r\n");
    if (end < 0) return undefined;
    return { version: "v1", src: text.slice(0, end).split(" ")[2] ?? "unknown", length: end + 2 };
  }
  return "PROXY ".startsWith(text) ? undefined : { none: true };
}

/** The reply once the stream after the header shows what it is: an HTTP request with its
 * headers complete, or any other first line; undefined until then. The header may arrive in a
 * segment of its own, ahead of the request (haproxy writes it apart), so what follows it is read
 * as it comes, not judged by the first read. */
function reply(said, rest) {
  const text = rest.toString("latin1");
  if (!text.includes("\n")) return undefined;
  if (!/^[A-Z]+ \S+ HTTP\/1/.test(text)) return `${said}\n`;
  if (!text.includes("\r\n\r\n")) return undefined;
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(said)}\r\nConnection: close\r\n\r\n${said}`;
}

net
  .createServer((socket) => {
    let buf = Buffer.alloc(0);
    let said;
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      if (said === undefined) {
        const header = parse(buf);
        if (!header) return;
        said = header.none ? "no header" : `${header.version} ${header.src}`;
        if (!header.none) buf = buf.subarray(header.length);
      }
      const r = reply(said, buf);
      if (r === undefined) return;
      socket.off("data", onData);
      socket.end(r);
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  })
  .listen(Number(process.argv[2]), "::");
