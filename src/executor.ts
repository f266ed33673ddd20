import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import {
  execute,
  type ExecutionResult,
  getVariableValues,
  GraphQLError,
  type GraphQLSchema,
  printSchema,
} from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';

/** Compiled queries kept per process (by query hash and operation name); the oldest go first. */
const MAX_COMPILED = 1000;

/**
 * How operations execute. Queries run through graphql-jit: each distinct query is compiled once into
 * plain functions (none of graphql-js's per-field promise and lookup work) and reused — the read
 * path's largest CPU saving. Mutations (and anything else) run through graphql-js exactly as Apollo
 * would run them. Plugged in through Apollo Server's executor interface (`gateway`), so parsing,
 * validation, every plugin and error formatting stay Apollo's; same schema, same resolvers.
 *
 * Two things keep a compiled query indistinguishable from graphql-js: variables are coerced by
 * graphql-js first (its errors, which Apollo answers with HTTP 400, and its messages), and the
 * errors graphql-jit reports are rebuilt as graphql-js errors (the plugins may rewrite their messages).
 */
export function compiledExecution(schema: GraphQLSchema): GatewayInterface {
  const compiled = new Map<string, CompiledQuery>();

  const executor: GatewayExecutor = async (rc) => {
    const variables = rc.request.variables ?? {};
    if (rc.operation.operation !== 'query') {
      return execute({
        schema,
        document: rc.document,
        contextValue: rc.context,
        variableValues: variables,
        operationName: rc.operationName,
      }) as Promise<ExecutionResult>;
    }
    const coerced = getVariableValues(schema, rc.operation.variableDefinitions ?? [], variables, { maxErrors: 50 });
    if (coerced.errors) return { errors: coerced.errors };

    const key = `${rc.queryHash}\n${rc.operationName ?? ''}`;
    let query = compiled.get(key);
    if (!query) {
      const result = compileQuery(schema, rc.document, rc.operationName ?? undefined);
      if (!isCompiledQuery(result)) return result;
      if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
      compiled.set(key, (query = result));
    }
    const result = await query.query(undefined, rc.context, variables);
    return result.errors ? { ...result, errors: result.errors.map(standardError) } : result;
  };

  return {
    load: async () => ({ executor }),
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: printSchema(schema) });
      return () => undefined;
    },
    stop: async () => undefined,
  };
}

/** graphql-jit's error as graphql-js makes it: same message, path, locations, original error and extensions. */
function standardError(error: GraphQLError): GraphQLError {
  const standard = new GraphQLError(error.message, {
    path: error.path,
    originalError: error.originalError ?? undefined,
    extensions: error.extensions,
  });
  return Object.assign(standard, { locations: error.locations });
}
