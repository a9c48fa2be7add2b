/** The error every run-folder check throws: its message names the path and the fix, for the CLI to print as is. */
export class RunDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunDirError';
  }
}
