import type * as z from "zod";
import { policySchema } from "../schema.js";
import { type DataPath, NotSure } from "./region.js";

interface Def {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly innerType?: z.ZodType;
  readonly checks?: readonly unknown[];
}

const defOf = (schema: z.ZodType) => (schema as unknown as { _zod: { def: Def } })._zod.def;

/**
 * The schema of the entries of the block sequence at `path`, and whether the sequence itself
 * carries a check (zod's min/max of entries). Every schema on the way must be a plain object,
 * record, array, default or optional: a transform or union there, or an object-wide check
 * (settings' mark rules), could make the entry's meaning depend on its neighbours. Records and
 * arrays on the way may carry checks: this policy's only ones count their entries (at least
 * one site, at least two members), which a change inside one entry leaves as they were.
 */
export function entrySchema(path: DataPath): { entry: z.ZodType; counted: boolean } {
  let schema: z.ZodType = policySchema;
  let checked = false;
  for (const step of [...path, 0]) {
    let def = defOf(schema);
    while (def.type === "default" || def.type === "optional") {
      schema = def.innerType as z.ZodType;
      def = defOf(schema);
    }
    checked = (def.checks?.length ?? 0) > 0;
    if (def.type === "object" && typeof step === "string" && !checked) {
      const next = def.shape?.[step];
      if (!next) throw new NotSure(`no field ${step}`);
      schema = next;
    } else if (def.type === "record" && typeof step === "string") {
      schema = def.valueType as z.ZodType;
    } else if (def.type === "array" && typeof step === "number") {
      schema = def.element as z.ZodType;
    } else throw new NotSure(`the schema at ${path.join(".")} is not plain`);
  }
  return { entry: schema, counted: checked };
}
