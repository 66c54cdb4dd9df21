#!/usr/bin/env bash
# Rebuild gateway/static/vendor from the npm registry at the pinned versions in
# gateway/static/vendor/MANIFEST (package version file-in-package target), then check every
# file against the manifest's SHA-256. Run it to upgrade a package: change its version, run,
# review the diff, commit the files, the new hashes and the licence together.
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=gateway/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
while read -r package version source target sha; do
  case "$package" in ""|\#*) continue ;; esac
  if [ ! -d "$work/$package@$version" ]; then
    (cd "$work" && npm pack --silent "$package@$version" >/dev/null)
    mkdir -p "$work/$package@$version"
    tar xzf "$work/$(echo "$package" | tr -d @ | tr / -)-$version.tgz" -C "$work/$package@$version"
  fi
  mkdir -p "$(dirname "$vendor/$target")"
  cp "$work/$package@$version/package/$source" "$vendor/$target"
  if [ "${1:-}" != "--update-hashes" ]; then
    echo "$sha  $vendor/$target" | sha256sum --check --quiet
  fi
done < "$vendor/MANIFEST"
echo "vendored files match $vendor/MANIFEST"
