import AjvModule from 'ajv';
import type { Options, ValidateFunction } from 'ajv';

/**
 * A JSON schema compiled on first use. Compiling one costs milliseconds to tens of them (Ajv
 * generates code); done at import, every CLI start paid for every schema, needed or not
 * (about 50 ms of a load's startup).
 */
export function lazySchema(schema: object, options: Options = { allErrors: true, strict: true }): () => ValidateFunction {
  let compiled: ValidateFunction | undefined;
  return () => {
    if (!compiled) {
      const Ajv = (AjvModule as unknown as { default?: typeof AjvModule }).default ?? AjvModule;
      compiled = new (Ajv as unknown as typeof AjvModule.default)(options).compile(schema);
    }
    return compiled;
  };
}
