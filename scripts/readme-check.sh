#!/usr/bin/env bash
# Builds the README's Swift code as a user who pastes it into a new package would.
#
# Every ```swift block of README.md names its file after the language (```swift Package.swift,
# ```swift Sources/exports/main.swift); a block without one fails the check, so that no Swift in the
# README goes unbuilt. The files make a package in .build-readme/packages/exports, next to a link
# named `jobwire` to this checkout, which the README's Package.swift names as `../jobwire`. The build
# keeps its folder (.build-readme/scratch) between runs and shares SwiftPM's cache of the dependencies.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.build-readme"
packages="$work/packages"
rm -rf "$packages"
mkdir -p "$packages"
ln -s "$root" "$packages/jobwire"
package="$packages/exports"
mkdir -p "$package"

awk -v dir="$package" '
    /^```swift/ {
        if (NF < 2) { printf "README.md:%d: a ```swift block names no file (```swift Sources/NAME/main.swift)\n", NR > "/dev/stderr"; bad = 1; file = "/dev/null" }
        else { file = dir "/" $2; blocks++; system("mkdir -p \"$(dirname \"" file "\")\""); printf "" > file }
        inside = 1; next
    }
    inside && /^```/ { inside = 0; close(file); next }
    inside { print >> file }
    END {
        if (bad) exit 1
        if (blocks == 0) { print "README.md has no ```swift block" > "/dev/stderr"; exit 1 }
        printf "README.md: %d Swift blocks\n", blocks
    }
' "$root/README.md"

start=$(date +%s)
swift build --package-path "$package" --scratch-path "$work/scratch"
echo "readme-check: the README's package builds ($(($(date +%s) - start)) s)"
