import { createHash } from "node:crypto";

/** The one name of a policy text: what records, caches, status and the API call its hash. */
export const policyHash = (text: string) => createHash("sha256").update(text).digest("hex");
