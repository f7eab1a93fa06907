/** One result of a benchmark suite: what each suite returns and the report prints. */
export interface Row {
  suite: string;
  name: string;
  value: number;
  unit: string;
  note?: string;
  /** The work measured, when a suite has several (the shared-state suites). */
  task?: string;
  /** The CPython task this row compares with, when CPython has none of the same name. */
  vs?: string;
  /** The contender computed a wrong result (`note` says what differed): it has no figure. */
  wrong?: boolean;
}
