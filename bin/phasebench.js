#!/usr/bin/env node
// Scenario files are TypeScript, so the CLI runs under tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('../harness/cli/main.ts');
