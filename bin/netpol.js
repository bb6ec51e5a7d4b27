#!/usr/bin/env -S node --max-semi-space-size=8 --expose-gc
// Young generation capped at 2 × 8 MB (V8 grows it to 2 × 16 MB): a netpol run builds trees it
// keeps (policy, desired and live state, plan), so most young objects survive and a larger
// nursery buys no speed, only some 15–35 MB of peak RSS at 10,000 objects (bench/apply.ts).
// `gc` is exposed for one full collection after a policy is validated (src/apply/apply.ts).
import "../lib/main.js";
