// Lists functions longer than a bound (default 60 lines): `npx tsx scripts/fn-lengths.ts [min] [files...]`.
import { Project, Node } from 'ts-morph';
const [minArg, ...files] = process.argv.slice(2);
const min = Number(minArg ?? 60);
const project = new Project({ skipAddingFilesFromTsConfig: true });
project.addSourceFilesAtPaths(files.length ? files : ['packages/*/src/**/*.ts', 'codemods/*/src/**/*.ts']);
const rows: [number, string][] = [];
for (const sf of project.getSourceFiles()) {
  sf.forEachDescendant((n) => {
    if (Node.isFunctionDeclaration(n) || Node.isMethodDeclaration(n) || Node.isArrowFunction(n) || Node.isFunctionExpression(n)) {
      const len = n.getEndLineNumber() - n.getStartLineNumber() + 1;
      if (len > min) {
        const name = (Node.isArrowFunction(n) ? undefined : n.getName()) ?? n.getParent()?.getKindName();
        rows.push([len, `${sf.getFilePath().replace(process.cwd() + '/', '')}:${n.getStartLineNumber()} ${name}`]);
      }
    }
  });
}
rows.sort((a, b) => b[0] - a[0]);
for (const [l, s] of rows) console.log(l, s);
