#!/usr/bin/env bash
# Builds the Debian package with cargo-deb, from [package.metadata.deb] in
# Cargo.toml: target/debian/gitlab-registry-cleaner_<version>-1_<arch>.deb
# (under $CARGO_TARGET_DIR when that is set). Installs cargo-deb first if it
# is missing. Prints the .deb's path as its last line.
#
#   packaging/build-deb.sh            # release build + package
#   packaging/build-deb.sh --no-build # package an existing release build
#
# First it generates the man page and shell completions into
# packaging/generated/ (packaging/gen), which the package installs.
#
# The package's binary has no `demo` command: Cargo.toml's
# [package.metadata.deb] sets default-features = false, so cargo-deb builds
# without the `demo` feature. With --no-build, build it that way first
# (cargo build --release --no-default-features --locked).
#
# Extra arguments go to `cargo deb`. Needs dpkg (dpkg-shlibdeps, from
# dpkg-dev, is used for Depends when present; without it cargo-deb falls back
# to a libc dependency).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0

if ! cargo deb --version >/dev/null 2>&1; then
    echo "== installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi

target_dir=${CARGO_TARGET_DIR:-target}

# The man page and the bash/zsh/fish completions, generated from the clap
# definition by packaging/gen (a workspace member of its own: clap_mangen and
# clap_complete stay out of the product binary); cargo-deb installs them.
generated=packaging/generated
rm -rf "$generated"
cargo run --release --locked --quiet -p packaging-gen -- "$generated" >&2
gzip -9n "$generated"/*.1

# cargo-deb runs `cargo build --release` itself; --locked keeps it to Cargo.lock.
# Its progress goes to stderr; stdout carries the .deb's path.
deb=$(cargo deb --locked "$@" | tail -n 1)
if [[ ! -f $deb ]]; then
    echo "build-deb: cargo deb did not report a .deb (got: $deb)" >&2
    exit 1
fi

# The config shipped as /etc/gitlab-registry-cleaner/config.json must pass the
# unit's ExecStartPre= check as it is.
"$target_dir/release/gitlab-registry-cleaner" check --daemon -c packaging/config.json >&2

echo "$deb"
