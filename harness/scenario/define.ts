import type { ScenarioInput } from './schema.ts';

/**
 * Wraps a scenario file's default export so its author gets type checking and autocompletion.
 * It returns its argument untouched: validation and defaults happen in `loadScenario`, so that
 * errors can name the file they came from.
 */
export function defineScenario(input: ScenarioInput): ScenarioInput {
  return input;
}
