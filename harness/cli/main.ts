import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { formatError, PhasebenchError } from '../errors.ts';
import { backfillCommand } from './backfill.ts';
import { compareCommand } from './compare.ts';
import { exportMetricsCommand } from './export-metrics.ts';
import { httpLoadCommand } from './http-load.ts';
import { liveCommand } from './live.ts';
import { previewCommand } from './preview.ts';
import { replayCommand } from './replay.ts';
import { reportCommand } from './report.ts';
import { runCommand } from './run.ts';
import { serveCommand } from './serve.ts';
import { engineCommand, fleetCommand } from './services.ts';
import { sweepCommand } from './sweep.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

// Output piped into `head` and cut off is not a failure of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

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
  reportCommand(),
  exportMetricsCommand(),
  backfillCommand(),
  liveCommand(),
  engineCommand(),
  fleetCommand(),
  serveCommand(),
  httpLoadCommand(),
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
