// The Node.js the helper runs on. The templates start it only on Node.js >= 22, but a helper run
// by hand, or by a `helper` command of the user's, may get an older one: say so in one line rather
// than fail later on a missing built-in (Set.prototype.union, module.enableCompileCache).

/** The oldest Node.js major version the helper runs on (package.json's engines says the same). */
export const MIN_NODE_MAJOR = 22;

/** unsupportedNode: the one-line complaint about this Node.js version, or undefined if it will do. */
export function unsupportedNode(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (major >= MIN_NODE_MAJOR) return undefined;
  return `niks3-gitlab needs Node.js ${MIN_NODE_MAJOR} or later; this is Node.js ${version}`;
}
