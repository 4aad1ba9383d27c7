import { Command } from 'commander';
import pc from 'picocolors';
import { PhasebenchError } from '../errors.ts';
import { replayRun } from '../run/replay.ts';
import { comparisonTable } from './output.ts';

export function replayCommand(): Command {
  return new Command('replay')
    .description("Rebuild a run's summary from its event logs alone and check it equals the stored one")
    .argument('<dir>', 'a results folder written by phasebench run')
    .option('--json', 'print the replayed metrics as JSON')
    .addHelpText('after', '\nExits 1 when any replayed number differs from summary.json.')
    .action(async (dir: string, options: { json?: boolean }) => {
      const result = await replayRun(dir);
      const replayed = {
        ...result.stored,
        plans: Object.fromEntries(Object.entries(result.replayed).map(([p, metrics]) => [p, { metrics }])),
      };
      if (options.json) process.stdout.write(`${JSON.stringify(replayed, null, 2)}\n`);
      else console.log(comparisonTable(replayed));
      if (result.mismatches.length > 0) {
        const detail = result.mismatches.map((m) => `${m.plan}: ${m.fields.join(', ')}`).join('; ');
        throw new PhasebenchError(
          'REPLAY_MISMATCH',
          `the replayed summary differs from summary.json (${detail})`,
        );
      }
      if (!options.json)
        console.log(
          pc.green(
            `Replayed ${Object.keys(result.replayed).length} plan log(s): every number matches summary.json.`,
          ),
        );
    });
}
