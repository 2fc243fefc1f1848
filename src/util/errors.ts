/** Base of every error gasang raises on purpose: a stable code for programs, a short message for people. */
export class GasangError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A user mistake (bad file, bad flag): the CLI prints one line and exits with status 2. */
export class InputError extends GasangError {}
