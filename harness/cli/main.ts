import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { formatError, PhasebenchError } from '../errors.ts';
import { backfillCommand } from './backfill.ts';
import { compareCommand } from './compare.ts';
import { exportMetricsCommand } from './export-metrics.ts';
import { previewCommand } from './preview.ts';
import { replayCommand } from './replay.ts';
import { runCommand } from './run.ts';
import { sweepCommand } from './sweep.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command('phasebench')
  .description(
    'Event-sourced load and performance harness for policy push rollouts: phased moves against big-bang bursts.',
  )
  .version(pkg.version)
  .showHelpAfterError('(add --help for usage)')
  .exitOverride();

for (const command of [
  runCommand(),
  sweepCommand(),
  previewCommand(),
  replayCommand(),
  compareCommand(),
  exportMetricsCommand(),
  backfillCommand(),
]) {
  program.addCommand(command.exitOverride().showHelpAfterError('(add --help for usage)'));
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version are not failures; usage mistakes exit 2 (commander already printed why).
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    console.error(formatError(error));
    process.exitCode = error instanceof PhasebenchError ? error.exitCode : 1;
  }
}
