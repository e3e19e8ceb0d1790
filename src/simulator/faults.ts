/** A fault the simulator's API plays instead of (or before) its answer. */
export interface Fault {
  /** Wait this long before answering (the answer itself is then normal unless another field says otherwise). */
  delayMs?: number;
  /** Answer with this HTTP status and an HTML body. */
  status?: number;
  /** Answer 200 with an HTML page instead of JSON. */
  notJson?: boolean;
  /** Close the connection without answering. */
  drop?: boolean;
  /** Answer this ipernity error code (e.g. 112 quota reached, 113 too many requests) instead of the method's answer. */
  apiError?: number;
  /** `upload.file` only: read half of the body, then close the connection without answering. */
  cutUpload?: boolean;
  /** Only for these API methods (all when absent). */
  methods?: string[];
  /** Only for the next N calls (for ever when absent). */
  times?: number;
}

/** The faults in force; tests switch them on and off. */
export class FaultSwitch {
  #fault: Fault | undefined;
  #remaining = Infinity;

  set(fault: Fault | undefined): void {
    this.#fault = fault;
    this.#remaining = fault?.times ?? Infinity;
  }

  clear(): void {
    this.set(undefined);
  }

  /** The fault for this call, counting it down. */
  take(method: string): Fault | undefined {
    const fault = this.#fault;
    if (!fault || this.#remaining <= 0) return undefined;
    if (fault.methods && !fault.methods.includes(method)) return undefined;
    this.#remaining -= 1;
    return fault;
  }
}

/** Reads a fault from a JSON body sent to the control endpoint; undefined when it is not one. */
export function parseFault(body: unknown): Fault | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const input = body as Record<string, unknown>;
  const fault: Fault = {};
  const count = (value: unknown): number | undefined =>
    typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 600_000 ? value : undefined;
  if (input.delayMs !== undefined) fault.delayMs = count(input.delayMs);
  if (input.status !== undefined) fault.status = count(input.status);
  if (input.times !== undefined) fault.times = count(input.times);
  if (input.notJson !== undefined) fault.notJson = input.notJson === true;
  if (input.drop !== undefined) fault.drop = input.drop === true;
  if (input.cutUpload !== undefined) fault.cutUpload = input.cutUpload === true;
  if (input.apiError !== undefined) fault.apiError = typeof input.apiError === 'number' && Number.isInteger(input.apiError) && input.apiError >= 1 && input.apiError <= 999 ? input.apiError : undefined;
  if (Array.isArray(input.methods) && input.methods.every((m) => typeof m === 'string')) fault.methods = input.methods as string[];
  if (Object.values(fault).some((value) => value === undefined)) return undefined;
  if (fault.status !== undefined && (fault.status < 400 || fault.status > 599)) return undefined;
  return fault;
}
