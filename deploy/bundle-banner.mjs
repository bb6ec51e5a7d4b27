// Bundled CommonJS dependencies (prom-client, fastify's) call require(), and write-file-atomic
// names its temporary files after __filename: an ESM bundle must give them both.
export const BUNDLE_BANNER =
  "import { createRequire as __netpolRequire } from 'node:module'; import { fileURLToPath as __netpolPath } from 'node:url'; const require = __netpolRequire(import.meta.url); const __filename = __netpolPath(import.meta.url);";
