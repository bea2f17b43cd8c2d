// Where the `inrun` command writes: stdout and stderr, injected so tests run the program in process.

/** The command's two output streams. */
export interface CliIo {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}
