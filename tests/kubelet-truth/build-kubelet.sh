#!/usr/bin/env bash
# Builds cmd/kubelet (or other commands: kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) of k8s.io/kubernetes at one release from the Go module proxy, with
# the ordinary `go` client, and caches the binaries by version.
#
#   tests/kubelet-truth/build-kubelet.sh v1.37.2      # prints the kubelet's path
#   tests/kubelet-truth/build-kubelet.sh v1.37.2 kube-apiserver kubectl   # one path a line
#
# Several commands are built by one `go build` (shared packages compile once).
#
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at
# v0.0.0 and replaces them with ./staging/src/... in its own go.mod; a replace in a
# dependency's go.mod is ignored, so a throwaway main module replaces every one of them with
# the matching published v0.MINOR.PATCH. The version variables are set with -ldflags as
# hack/lib/version.sh (kube::version::ldflags) sets them, so `--version`, the Go build
# information and kubernetes_build_info say the real version.
#
# Cache: ${KUBELET_TRUTH_CACHE:-/var/cache/kubelet-sentinel/kubelets}/<version>/<command>
# (kubelet, kube-apiserver, ...), with <version>/toolchain saying which Go built them.
#
# Toolchain: the one upstream built the release with, i.e. the release's .go-version file
# (hack/lib/golang.sh sets GOTOOLCHAIN=go$(cat .go-version)); else the go.mod's `toolchain`
# line; else go<go line> (go1.21 -> go1.21.0). The module proxy serves those toolchains
# (golang.org/toolchain); if the chosen one cannot be had, the local go is used and a warning
# printed. KUBELET_TRUTH_GOTOOLCHAIN=go1.X.Y (or local) overrides the choice.
# The release's `godebug` lines are copied into the throwaway main module, since a
# dependency's go.mod godebug lines are ignored and they change runtime defaults (TLS, ...).
set -euo pipefail
version=${1:?usage: build-kubelet.sh vMAJOR.MINOR.PATCH [command...]}
[[ $version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "not a release version: $version" >&2; exit 2; }
minor=${BASH_REMATCH[1]} patch=${BASH_REMATCH[2]}
shift
cmds=("$@")
[[ ${#cmds[@]} -gt 0 ]] || cmds=(kubelet)
for c in "${cmds[@]}"; do
  case $c in
    kubelet | kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) ;;
    *) echo "not a command this script builds: $c" >&2; exit 2 ;;
  esac
done
cache=${KUBELET_TRUTH_CACHE:-/var/cache/kubelet-sentinel/kubelets}
missing=()
for c in "${cmds[@]}"; do [[ -x $cache/$version/$c ]] || missing+=("$c"); done
if [[ ${#missing[@]} -eq 0 ]]; then
  for c in "${cmds[@]}"; do echo "$cache/$version/$c"; done
  exit 0
fi

command -v go >/dev/null || { echo "go is not installed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod
printf 'module kubelet-build\n\ngo 1.22\n' > go.mod
mod_json=$(GOTOOLCHAIN=local go mod download -json "k8s.io/kubernetes@$version")
gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$mod_json")
[[ -f $gomod ]] || { echo "no go.mod for k8s.io/kubernetes@$version: $mod_json" >&2; exit 1; }
rm go.mod  # an older toolchain forced by GOTOOLCHAIN would refuse the stub's go line

want_go=$(awk '$1 == "go" { print $2; exit }' "$gomod")
toolchain=$(awk '$1 == "toolchain" { print $2; exit }' "$gomod")
moddir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$mod_json")
dotgo=""
[[ -n $moddir && -f $moddir/.go-version ]] && dotgo=$(tr -d '[:space:]' < "$moddir/.go-version")
if [[ -n ${KUBELET_TRUTH_GOTOOLCHAIN:-} ]]; then
  choice=$KUBELET_TRUTH_GOTOOLCHAIN
elif [[ -n $dotgo ]]; then
  choice=go$dotgo
elif [[ -n $toolchain ]]; then
  choice=$toolchain
else
  choice=go$want_go
  [[ $want_go =~ ^[0-9]+\.[0-9]+$ ]] && choice=go$want_go.0
fi
[[ $choice == local || $choice == go* ]] || choice=go$choice
have_go=$(GOTOOLCHAIN=local go env GOVERSION)
if [[ $choice == "$have_go" ]]; then
  choice=local
elif [[ $choice != local ]] && ! GOTOOLCHAIN=$choice go version >/dev/null 2>"$work/toolchain.err"; then
  echo "warning: cannot get Go toolchain $choice ($(tail -n1 "$work/toolchain.err")); using local $have_go" >&2
  choice=local
fi
export GOTOOLCHAIN=$choice
used_go=$(go env GOVERSION)
echo "building ${missing[*]} $version with $used_go (go.mod: go $want_go${toolchain:+, toolchain $toolchain}${dotgo:+; .go-version $dotgo})" >&2

{
  printf 'module kubelet-build\n\ngo %s\n\n' "$want_go"
  # the release's godebug directives (single lines and blocks), which set runtime defaults
  awk '/^godebug[[:space:]]*\(/ { blk = 1 } blk || /^godebug[[:space:]]/ { print } blk && /^\)/ { blk = 0 }' "$gomod"
  printf '\nrequire k8s.io/kubernetes %s\n\n' "$version"
  # Every staging module k8s.io/kubernetes requires at v0.0.0 -> its published v0.MINOR.PATCH.
  # One the proxy does not serve (k8s.io/legacy-cloud-providers v0.29.x: 403 "not available")
  # becomes an empty local module: the kubelet is built with -tags providerless, which never
  # imports the cloud providers, so no package of it is compiled.
  awk '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// { print $1 }' "$gomod" | sort -u |
    while read -r m; do
      if GOFLAGS= go mod download "$m@v0.$minor.$patch" >/dev/null 2>"$work/dl.err"; then
        printf 'replace %s => %s v0.%s.%s\n' "$m" "$m" "$minor" "$patch"
      else
        echo "note: $m@v0.$minor.$patch cannot be had ($(grep -m1 -o '[0-9]\{3\} [A-Za-z ]*' "$work/dl.err" || tail -n1 "$work/dl.err")); an empty stub replaces it" >&2
        stub="$work/stub/${m//\//_}"
        mkdir -p "$stub"
        printf 'module %s\n\ngo 1.21\n' "$m" > "$stub/go.mod"
        printf 'replace %s => %s\n' "$m" "$stub"
      fi
    done
} > go.mod
{
  printf 'package main\n\nimport (\n'
  for c in "${missing[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
  printf ')\n'
} > deps.go
# -e: tidy looks at every build tag, so it misses the stubbed cloud-provider packages that the
# providerless build never imports.
go mod tidy -e >"$work/tidy.log" 2>&1 || { cat "$work/tidy.log" >&2; exit 1; }
rm -f deps.go

date_flag=$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%dT%H:%M:%SZ)
ld=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ld+=" -X '$pkg.gitVersion=$version' -X '$pkg.gitMajor=1' -X '$pkg.gitMinor=$minor'"
  ld+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=$date_flag'"
done
mkdir -p "$cache/$version"
pkgs=()
for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
mkdir -p "$work/bin"
if ! CGO_ENABLED=0 go build -trimpath -tags providerless -ldflags "-s -w $ld" -o "$work/bin/" "${pkgs[@]}"; then
  if [[ -d $work/stub ]]; then
    echo "build failed; stubbed (not served by the module proxy): $(ls "$work/stub" | tr '_' '/' | tr '\n' ' ')" >&2
    echo "(v1.29.x: cmd/kubelet imports pkg/credentialprovider/{azure,gcp}, which import k8s.io/legacy-cloud-providers even with -tags providerless)" >&2
  fi
  exit 1
fi
for c in "${missing[@]}"; do
  # copy then rename: the cache and the temp dir may be on different filesystems
  cp "$work/bin/$c" "$cache/$version/$c.tmp"
  mv "$cache/$version/$c.tmp" "$cache/$version/$c"
done
echo "$used_go" > "$cache/$version/toolchain"
for c in "${cmds[@]}"; do echo "$cache/$version/$c"; done
