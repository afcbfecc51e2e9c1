# Shared by the bench scripts (sourced, not run): host trees and loopback ports.
# shellcheck shell=bash

# copy_fixture SRC DEST: a fixture tree as the test harness sees it: copied with its
# symlinks, then its links.txt (symlinks git cannot hold) and modes.txt (modes git does not
# keep) applied, and the harness's own files removed.
copy_fixture() {
  local src="$1" dest="$2" link target mode path
  cp -a "$src" "$dest"
  if [ -f "$dest/links.txt" ]; then
    while read -r link target; do
      case "$link" in ''|'#'*) continue ;; esac
      mkdir -p "$(dirname "$dest/$link")"
      ln -s "$target" "$dest/$link"
    done < "$dest/links.txt"
  fi
  if [ -f "$dest/modes.txt" ]; then
    while read -r mode path; do
      case "$mode" in ''|'#'*) continue ;; esac
      chmod "$mode" "$dest/$path"
    done < "$dest/modes.txt"
  fi
  rm -rf "$dest"/{modes,owners,sparse,decoys,links}.txt "$dest/_decoys"
}

# free_port: a loopback TCP port nothing listens on now.
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  else
    local p
    while :; do
      p=$((20000 + RANDOM % 40000))
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
  fi
}
