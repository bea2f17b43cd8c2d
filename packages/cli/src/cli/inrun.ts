#!/usr/bin/env node
// The `inrun` executable (package.json bin): runs the CLI and exits with its code.
import { main } from './program.js';

process.exitCode = await main(process.argv.slice(2), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
