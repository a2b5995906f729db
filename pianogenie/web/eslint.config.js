// Lint for the app (src/, browser), its tests and tools (Node) and the Node benchmarks: eslint's
// recommended rules. `npm run lint` runs it from the repository root (with -c, the base of these
// paths), so that benchmarks/*.mjs is in reach; scripts/lint.sh runs it with the Python checks.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["pianogenie/web/node_modules/"] },
  { ...js.configs.recommended, files: ["pianogenie/web/**/*.{js,mjs}", "benchmarks/*.mjs"] },
  {
    files: ["pianogenie/web/src/**/*.js"],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Node, and the browser's globals for the code run in the page (page.evaluate)
    files: ["pianogenie/web/{test,tools}/**/*.{js,mjs}", "pianogenie/web/eslint.config.js", "benchmarks/*.mjs"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
];
