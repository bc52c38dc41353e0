#!/bin/sh
# Refresh the third-party browser code Studbook serves itself (no CDN: the review workspace and
# /docs must work offline). Run from anywhere with npm; commit the result. Versions are pinned
# here, and each package's licence travels with it.
set -eu
DAGRE=@dagrejs/dagre@3.1.3          # layered graph layout (MIT)
SWAGGER=swagger-ui-dist@5.35.0      # OpenAPI UI for /docs (Apache-2.0)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "$DAGRE" "$SWAGGER" >/dev/null
mkdir d s
tar xzf dagrejs-dagre-*.tgz -C d
tar xzf swagger-ui-dist-*.tgz -C s
cp d/package/dist/dagre.min.js d/package/LICENSE "$here/dagre/"
for f in swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css LICENSE NOTICE; do
  cp "s/package/$f" "$here/swagger-ui/"
done
# Source-map comments would make the browser ask for files we do not ship.
sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' \
  "$here"/dagre/dagre.min.js "$here"/swagger-ui/*.js "$here"/swagger-ui/*.css
printf '%s\n%s\n' "$DAGRE" "$SWAGGER" > "$here/VERSIONS"
