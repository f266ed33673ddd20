import type { ApolloServerPlugin } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { type DocumentNode, getNullableType, GraphQLError, type GraphQLSchema, isListType, visit } from 'graphql';
import { type ComplexityEstimator, getComplexity } from 'graphql-query-complexity';
import type { Config } from './config';

/** A list without `first` (an order's fills, its log) is counted as this many items. */
export const UNBOUNDED_LIST_WEIGHT = 10;

/**
 * The cost of a field: 1, plus its children's cost times the number of items it can return —
 * `first` for connections (default 50), UNBOUNDED_LIST_WEIGHT for plain lists. So
 * `positions(first: 100) { edges { node { orders(first: 50) { … } } } }` costs about 100 × 50 × (…).
 */
export const costEstimator: ComplexityEstimator = ({ type, field, args, childComplexity }) => {
  if (typeof args.first === 'number') return 1 + Math.max(args.first, 1) * childComplexity;
  const listOfItems =
    isListType(getNullableType(field.type)) && !(type.name.endsWith('Connection') && field.name === 'edges');
  return 1 + (listOfItems ? UNBOUNDED_LIST_WEIGHT : 1) * childComplexity;
};

/** Costs kept per parsed document (Apollo hands the same document for the same query text), by variables. */
const MAX_COSTS_PER_DOCUMENT = 100;

const variableFree = new WeakMap<DocumentNode, boolean>();
/** Whether no variable can change a document's cost: none feeds a `first` argument or a `@skip`/`@include` condition. */
function costIgnoresVariables(document: DocumentNode): boolean {
  let known = variableFree.get(document);
  if (known === undefined) {
    known = true;
    visit(document, {
      Argument(node) {
        if (node.name.value !== 'first' && node.name.value !== 'if') return;
        visit(node.value, {
          Variable() {
            known = false;
          },
        });
      },
    });
    variableFree.set(document, known);
  }
  return known;
}

/** Refuses an operation costing more than `maxCost`, before any SQL runs (HTTP 400). */
export function costLimitPlugin(schema: GraphQLSchema, maxCost: number): ApolloServerPlugin {
  const costs = new WeakMap<DocumentNode, Map<string, number | null>>();
  const compute = (document: DocumentNode, variables: Record<string, unknown>, operationName?: string) => {
    try {
      return getComplexity({ schema, query: document, variables, operationName, estimators: [costEstimator] });
    } catch (error) {
      // Variables that do not fit the operation: execution refuses them with BAD_USER_INPUT.
      if (!(error instanceof GraphQLError)) throw error;
      return null;
    }
  };
  /**
   * Costs are remembered per document: by operation alone when no variable can change the cost (the
   * usual mutation, whose variables are its data: a batch of 500 executions is not coerced again just
   * to be counted), else, for queries, by operation and variables (dashboards repeat the same ones).
   * A mutation whose cost depends on its variables is counted every time.
   */
  const costOf = (
    document: DocumentNode,
    variables: Record<string, unknown>,
    operationName: string | undefined,
    query: boolean,
  ) => {
    const fixed = costIgnoresVariables(document);
    if (!fixed && !query) return compute(document, variables, operationName);
    let known = costs.get(document);
    if (!known) costs.set(document, (known = new Map()));
    const key = fixed ? `${operationName ?? ''}` : `${operationName ?? ''}\n${JSON.stringify(variables)}`;
    let cost = known.get(key);
    if (cost === undefined) {
      cost = compute(document, variables, operationName);
      // Variables that do not fit give no cost: never remembered for other variables.
      if (cost === null && fixed) return cost;
      if (known.size >= MAX_COSTS_PER_DOCUMENT) known.clear();
      known.set(key, cost);
    }
    return cost;
  };
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document, operation }) {
          if (!operation) return; // no such operation: inputGuardPlugin answers
          const query = operation.operation === 'query';
          const cost = costOf(document, request.variables ?? {}, request.operationName ?? undefined, query);
          if (cost === null) return;
          if (cost > maxCost) {
            throw new GraphQLError(
              `The query costs ${cost}, more than the limit of ${maxCost}: ask for fewer items (first) or fewer nested lists.`,
              { extensions: { code: 'QUERY_TOO_COSTLY', cost, maxCost, http: { status: 400 } } },
            );
          }
        },
      };
    },
  };
}

/**
 * graphql-armor's depth, alias and directive limits, and no "Did you mean …?" hints in
 * production; batched HTTP operations are refused. Violations are validation errors (HTTP 400).
 */
export function armor(cfg: Config): ReturnType<ApolloArmor['protect']> {
  return new ApolloArmor({
    maxDepth: { n: cfg.maxDepth, flattenFragments: true, exposeLimits: true },
    maxAliases: { n: cfg.maxAliases, exposeLimits: true },
    // Token limit: graphql-js's own parser option (see createApollo); armor's plugin answers 500.
    maxTokens: { enabled: false },
    maxDirectives: { n: 20, exposeLimits: true },
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: cfg.nodeEnv === 'production' },
  }).protect();
}
