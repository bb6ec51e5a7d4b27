import type { AddressSpec, RouteSpec, RuleSpec } from "../compile/desired.js";
import { addressArgs, routeArgs, ruleArgs } from "../render/ip.js";

/** Identity of kernel objects: the ip(8) words that would add them (the protocol aside). */
export const routeKey = (r: RouteSpec) => routeArgs("add", r, 0).join(" ");
export const ruleKey = (r: RuleSpec) => `${r.family} ${ruleArgs("add", r, 0).join(" ")}`;
export const addressKey = (a: AddressSpec) => addressArgs("add", a).join(" ");
