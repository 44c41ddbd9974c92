#!/usr/bin/env bash
# Supply-chain checks (`make audit`; CI): cargo deny (advisories, licences, bans, sources: deny.toml)
# and cargo audit, against the RustSec advisory database (ops/supply-chain/README.md).
#
#   scripts/audit.sh                    both checks
#   scripts/audit.sh update-snapshot    refresh ops/supply-chain/rustsec-advisory-db.tar.gz from GitHub
#
# The tools are built once, pinned, into $HERALD_CACHE_DIR/cargo-tools (default ~/.cache/herald).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

CACHE_DIR="${HERALD_CACHE_DIR:-$HOME/.cache/herald}"
TOOLS_DIR="$CACHE_DIR/cargo-tools"
CARGO_DENY_VERSION=0.20.2
CARGO_AUDIT_VERSION=0.22.2
DATABASE_URL=https://github.com/rustsec/advisory-db
SNAPSHOT=ops/supply-chain/rustsec-advisory-db.tar.gz
# Where cargo deny keeps the default database (`<db-path>/<name>-<hash of its URL>`, with the
# db-path of deny.toml); cargo audit is given the same clone.
DENY_DB_ROOT="$CACHE_DIR/advisory-dbs"
DATABASE_DIR="$DENY_DB_ROOT/advisory-db-3157b0e258782691"

log() { printf '[audit] %s\n' "$*" >&2; }

install_tool() {
  local crate=$1 version=$2
  if "$TOOLS_DIR/bin/$crate" --version 2>/dev/null | grep -qF "$version"; then return 0; fi
  log "building $crate $version from crates.io into $TOOLS_DIR (once)"
  cargo install --quiet --locked --root "$TOOLS_DIR" --version "$version" "$crate"
}

# The live database if GitHub answers within a minute, else the checked-in snapshot, as a git
# repository (both tools open it as one).
prepare_database() {
  rm -rf "$DATABASE_DIR.new"
  mkdir -p "$DENY_DB_ROOT"
  if timeout 60 git clone --quiet --depth 1 "$DATABASE_URL" "$DATABASE_DIR.new" 2>/dev/null; then
    log "advisories: the live RustSec database ($(git -C "$DATABASE_DIR.new" log -1 --format=%cs))"
  else
    rm -rf "$DATABASE_DIR.new"
    mkdir -p "$DATABASE_DIR.new"
    tar -xzf "$SNAPSHOT" -C "$DATABASE_DIR.new"
    git -C "$DATABASE_DIR.new" init --quiet
    git -C "$DATABASE_DIR.new" add --all
    git -C "$DATABASE_DIR.new" -c user.name=herald -c user.email=herald@localhost \
      commit --quiet -m "snapshot (ops/supply-chain/README.md)"
    log "advisories: GitHub unreachable; the snapshot in $SNAPSHOT ($(grep -oE 'of [0-9]{4}-[0-9]{2}-[0-9]{2}' ops/supply-chain/README.md | head -n 1))"
  fi
  rm -rf "$DATABASE_DIR"
  mv "$DATABASE_DIR.new" "$DATABASE_DIR"
}

update_snapshot() {
  local scratch
  scratch="$(mktemp -d)"
  git clone --quiet --depth 1 "$DATABASE_URL" "$scratch/db"
  git -C "$scratch/db" archive --format=tar HEAD crates LICENSE.txt | gzip -9 > "$SNAPSHOT"
  local commit date
  commit="$(git -C "$scratch/db" rev-parse HEAD)"
  date="$(git -C "$scratch/db" log -1 --format=%cs)"
  sed -i "s/^Snapshot: .*/Snapshot: advisory-db commit $commit of $date./" ops/supply-chain/README.md
  rm -rf "$scratch"
  log "snapshot of $date written to $SNAPSHOT"
}

case "${1:-check}" in
  update-snapshot) update_snapshot; exit 0 ;;
  check) ;;
  *) echo "usage: $0 [check|update-snapshot]" >&2; exit 2 ;;
esac

install_tool cargo-deny "$CARGO_DENY_VERSION"
install_tool cargo-audit "$CARGO_AUDIT_VERSION"
prepare_database
# Both read the dependency graph offline: every crate of Cargo.lock downloaded first.
cargo fetch --locked --quiet
HERALD_ADVISORY_DB_ROOT="$DENY_DB_ROOT" "$TOOLS_DIR/bin/cargo-deny" --all-features --offline check \
  advisories licenses bans sources
# cargo audit reads all of Cargo.lock, also crates no Herald build compiles; what it reports and
# cargo deny (which reads the graph actually built) does not, is explained here.
audit_ignores=(
  # quick-xml 0.26: pprof's flame graphs only, in a feature release images leave out (deny.toml).
  --ignore RUSTSEC-2026-0194 --ignore RUSTSEC-2026-0195
  # rsa (Marvin attack): only under sqlx-mysql, which Cargo.lock lists for sea-orm but no Herald
  # crate enables (PostgreSQL only); no fixed version exists.
  --ignore RUSTSEC-2023-0071
)
"$TOOLS_DIR/bin/cargo-audit" audit --no-fetch --db "$DATABASE_DIR" --deny warnings "${audit_ignores[@]}"
log "all checks passed"
