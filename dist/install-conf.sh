#!/bin/sh
# meson install step: puts the default config into <sysconfdir>/im/conf.d
# without touching an operator's files. A file that already exists is kept;
# when it differs from the new default, the default is written beside it as
# <name>.dist (never loaded: only *.yaml and *.yml are) for a diff.
# Usage: install-conf.sh SRC_CONF_D DEST_CONF_D STATEDIR
set -eu
src=$1; dest="${DESTDIR:-}$2"; state=$3
mkdir -p "$dest"
for f in "$src"/*.yaml; do
  name=$(basename "$f")
  tmp="$dest/.$name.new"
  # An installed server keeps its state in STATEDIR, not in ./var.
  sed "s|\${IM_DATA_DIR:-./var}|\${IM_DATA_DIR:-$state}|" "$f" >"$tmp"
  if [ ! -e "$dest/$name" ]; then
    # Readable by the service user: the defaults hold no secrets (they
    # come from the environment); keep yours in a 0640 root:im file.
    chmod 0644 "$tmp"
    mv "$tmp" "$dest/$name"
    echo "Installing $dest/$name"
  elif cmp -s "$tmp" "$dest/$name"; then
    rm -f "$tmp"
  else
    chmod 0644 "$tmp"
    mv "$tmp" "$dest/$name.dist"
    echo "Keeping $dest/$name (yours); new default in $name.dist"
  fi
done
# Template overrides go in conf.d/templates/<platform>/; the defaults are in
# <datadir>/im/templates.
mkdir -p "$dest/templates"
[ -e "$dest/templates/README.md" ] || cp "$src/templates/README.md" "$dest/templates/README.md"
