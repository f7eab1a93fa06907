/**
 * Decides whether a function can travel as source text: it may use its parameters, its own locals
 * and the globals every worker has, and nothing else. The check parses `fn.toString()` with acorn
 * and lists the identifiers it reads that it does not declare.
 *
 * The scope model is deliberately coarse: a name declared anywhere inside the function counts as
 * declared everywhere in it. That can miss a capture hidden behind a same-named inner declaration;
 * such a function still fails, later, with a ReferenceError that the worker rewrites to name the
 * variable. It never rejects a function that is really self-contained.
 */
import { createRequire } from "node:module";

// acorn is loaded on first use: workers and programs that never send a function by source skip it.
let acorn: typeof import("acorn") | undefined;
function parse(source: string, options: import("acorn").Options): import("acorn").Program {
  acorn ??= createRequire(import.meta.url)("acorn") as typeof import("acorn");
  return acorn.parse(source, options);
}

type Node = { type: string; [key: string]: unknown };

/** The source of `fn` as a standalone expression, or a reason it has none. */
export function functionExpressionSource(fn: Function): { source: string } | { reason: string } {
  const text = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(text)) {
    return { reason: "it is a built-in or bound function, which has no source to send" };
  }
  if (text.startsWith("class")) return { reason: "it is a class, which cannot travel by source" };
  for (const candidate of [text, methodToFunction(text)]) {
    if (candidate === undefined) continue;
    try {
      parse(`(${candidate})`, { ecmaVersion: "latest", sourceType: "script" });
      return { source: candidate };
    } catch {
      // try the next form
    }
  }
  return { reason: "its source text is not a standalone function expression" };
}

/** `foo(x) {}` / `async foo(x) {}` / `*foo() {}` (method shorthand) as a function expression. */
function methodToFunction(text: string): string | undefined {
  const m = /^(async\s+)?(\*?)\s*([A-Za-z_$][\w$]*)\s*\(/.exec(text);
  if (!m) return undefined;
  return `${m[1] ?? ""}function${m[2]} ${m[3]}${text.slice(m[0].length - 1)}`;
}

/**
 * Names `source` (a function expression) reads without declaring them, minus the worker's globals.
 * With `positions`, also where in `source` each of them is first read.
 */
export function capturedNames(source: string, globals: ReadonlySet<string>, positions?: Map<string, number>): string[] {
  const program = parse(`(${source})`, { ecmaVersion: "latest", sourceType: "script" }) as unknown as Node;
  const declared = new Set<string>();
  const used: Used = new Map();
  visit(program, declared, used);
  const captured = [...used.keys()].filter((name) => !declared.has(name) && !globals.has(name) && name !== "arguments");
  // the parsed text is `(${source})`: one character before the source
  for (const name of captured) positions?.set(name, used.get(name)! - 1);
  return captured;
}

/** Each name read, with the offset of its first read. */
type Used = Map<string, number>;

function visit(node: unknown, declared: Set<string>, used: Used): void {
  if (Array.isArray(node)) {
    for (const child of node) visit(child, declared, used);
    return;
  }
  if (!node || typeof node !== "object" || typeof (node as Node).type !== "string") return;
  const n = node as Node;
  switch (n.type) {
    case "Identifier":
      if (!used.has(n.name as string)) used.set(n.name as string, n.start as number);
      return;
    case "MemberExpression":
      visit(n.object, declared, used);
      if (n.computed) visit(n.property, declared, used);
      return;
    case "Property":
    case "MethodDefinition":
    case "PropertyDefinition":
      if (n.computed) visit(n.key, declared, used);
      visit(n.value, declared, used);
      return;
    case "LabeledStatement":
      visit(n.body, declared, used);
      return;
    case "BreakStatement":
    case "ContinueStatement":
    case "MetaProperty":
      return;
    case "VariableDeclarator":
      bind(n.id, declared, used);
      visit(n.init, declared, used);
      return;
    case "FunctionDeclaration":
    case "FunctionExpression":
    case "ArrowFunctionExpression":
      if (n.id) declared.add((n.id as Node).name as string);
      for (const param of n.params as Node[]) bind(param, declared, used);
      visit(n.body, declared, used);
      return;
    case "ClassDeclaration":
    case "ClassExpression":
      if (n.id) declared.add((n.id as Node).name as string);
      visit(n.superClass, declared, used);
      visit(n.body, declared, used);
      return;
    case "CatchClause":
      if (n.param) bind(n.param, declared, used);
      visit(n.body, declared, used);
      return;
    default:
      for (const key in n) {
        if (key !== "type" && key !== "start" && key !== "end") visit(n[key], declared, used);
      }
  }
}

/** Declares every name a binding pattern introduces; default values and computed keys are reads. */
function bind(pattern: unknown, declared: Set<string>, used: Used): void {
  if (!pattern || typeof pattern !== "object") return;
  const p = pattern as Node;
  switch (p.type) {
    case "Identifier":
      declared.add(p.name as string);
      return;
    case "ObjectPattern":
      for (const prop of p.properties as Node[]) {
        if (prop.type === "RestElement") bind(prop.argument, declared, used);
        else {
          if (prop.computed) visit(prop.key, declared, used);
          bind(prop.value, declared, used);
        }
      }
      return;
    case "ArrayPattern":
      for (const element of p.elements as Node[]) bind(element, declared, used);
      return;
    case "RestElement":
      bind(p.argument, declared, used);
      return;
    case "AssignmentPattern":
      bind(p.left, declared, used);
      visit(p.right, declared, used);
      return;
    default:
      // e.g. a MemberExpression as an assignment target in a for-of head
      visit(p, declared, used);
  }
}
