#!/usr/bin/env node
/**
 * The `uhop` command: `uhop <command> [options]`.
 *
 * To add a command, write a module that exports `command: CommandModule` (see
 * src/experiments/command.ts) and add one line to COMMANDS below. Modules are imported only
 * when their command runs, so a slow import in one command never delays another.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { initBackend, describeBackend } from './node/backend.js';
import { UsageError, type CliIO, type CommandModule } from './experiments/command.js';

interface CommandEntry {
  /** One line for the command list. */
  summary: string;
  load(): Promise<CommandModule>;
}

/** The loader of a command module, imported on first use. */
function lazy(load: () => Promise<{ command: unknown }>): () => Promise<CommandModule> {
  return async () => (await load()).command as CommandModule;
}

/** Dispatch table: command name -> lazily loaded module. */
export const COMMANDS: Record<string, CommandEntry> = {
  retrieval: {
    summary: 'associative-memory retrieval: error vs memory size and vs query noise (U-Hop paper)',
    load: lazy(() => import('./experiments/retrievalCommand.js')),
  },
  mil: {
    summary: 'multiple-instance learning: MUSK1/MUSK2/Elephant or any MIL CSV, repeated k-fold CV (accuracy, ROC AUC)',
    load: lazy(() => import('./experiments/milCommand.js')),
  },
  vision: {
    summary: 'image classification with a Hopfield layer over patch tokens: softmax vs U-Hop (vs sparse) attention',
    load: lazy(() => import('./experiments/visionCommand.js')),
  },
  recall: {
    summary: 'synthetic key-value associative recall: softmax attention vs U-Hop as the number of stored pairs grows',
    load: lazy(() => import('./experiments/recallCommand.js')),
  },
  finetune: {
    summary: 'train with MultiHeadAttention, save/load, replaceAttention -> U-Hop, fine-tune; vs continuing the original',
    load: lazy(() => import('./experiments/finetuneCommand.js')),
  },
};

/** The top-level help text. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const list = Object.entries(COMMANDS)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  return `Usage: uhop <command> [options]

U-Hop (learned-kernel modern Hopfield) experiments on TensorFlow.js.

Commands:
${list}

Run 'uhop <command> --help' for a command's options.
`;
}

const PROCESS_IO: CliIO = { stdout: process.stdout, stderr: process.stderr };

/**
 * Runs the command line `argv` (without node and the script) and resolves to the exit code:
 * 0 success, 1 failure while running, 2 a wrong command line.
 *
 * @example
 * ```ts
 * import { main } from './cli.js';
 * process.exitCode = await main(['retrieval', '--sizes', '10,100']);
 * ```
 */
export async function main(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(usage());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    io.stderr.write(`uhop: unknown command '${name}'. Commands: ${Object.keys(COMMANDS).join(', ')}. See 'uhop --help'.\n`);
    return 2;
  }
  try {
    const command = await entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(command.help);
      return 0;
    }
    const parsed = command.parse(rest);
    const backend = await initBackend(parsed.backend);
    io.stdout.write(`${describeBackend(backend)}\n`);
    return await command.run(parsed, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`${e.message}\n`);
      return 2;
    }
    const err = e as Error;
    io.stderr.write(`uhop ${name}: ${err.message}\n`);
    if (process.env.UHOP_DEBUG) io.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`uhop: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
