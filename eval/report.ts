import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSection } from '../bench/report.js';

const HEADER = `# Evaluation

Written by \`npm run eval\` (each evaluation also runs alone: \`npx tsx eval/<name>.ts\`). Small
reproductions of the papers' protocols on the reference models; each section states its protocol, seeds,
machine and runtime. The numbers are this machine's; rerun to refresh them.
`;

/** Replaces the section `id` of the evaluation document. */
export function writeEvaluation(file: string, id: string, markdown: string): void {
  writeSection(file, id, markdown, HEADER);
}

/** Whether the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(url) === resolve(process.argv[1]);
}
