#!/usr/bin/env bash
# telemetry_full --bars in a real terminal (a tmux pane of 120x40): the bar
# lines of the node are drawn and redrawn in place (the pane's history
# stays short, however many samples came), the run ends with the seed's
# closing lines. The same run writes --telemetry-log (JSON lines, parsed
# back) and --telemetry-plot (an SVG, well-formed XML).
set -u
. "$(dirname "$0")/rt_lib.sh"
. "$(dirname "$0")/test_telemetry_full_lib.sh"
command -v tmux >/dev/null || { echo "SKIP: no tmux"; exit 77; }

small_mnist "$WORK/data" 640 200
sock=tf_bars_$$
tm() { tmux -L "$sock" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null; rm -rf "$DROVER_TMPDIR" "$WORK"' EXIT
cat >"$WORK/cmd.sh" <<EOS
"$D" run --job-id tf_bars1_$$ -- "$TF" --bars --epochs 3 --mem 65536 --size 64 \
    --interval 0.1 --tail 2 --data-dir "$WORK/data" --telemetry-log "$WORK/t.jsonl" \
    --telemetry-plot "$WORK/t.svg" 2>"$WORK/err"
echo "exit status \$?" >"$WORK/rc"
EOS
tm new-session -d -x 120 -y 40 -s bars "bash $WORK/cmd.sh; sleep 600"
# Capture while the bars move, then once the run is over.
mid=""
for _ in $(seq 600); do
    [ -s "$WORK/rc" ] && break
    if [ -z "$mid" ] && grep -q '^Launching' <(tm capture-pane -p -t bars); then
        sleep 2
        mid=$(tm capture-pane -p -t bars)
    fi
    sleep 0.1
done
[ -s "$WORK/rc" ] || bad "the run did not end in 60 s"
end=$(tm capture-pane -p -S - -t bars)
tm kill-server 2>/dev/null
echo "--- the pane mid-run:"
printf '%s\n' "$mid"
echo "--- the pane at the end:"
printf '%s\n' "$end" | sed '/^$/d'
grep -qx "exit status 0" "$WORK/rc" || bad "$(cat "$WORK/rc"): $(cat "$WORK/err")"

host=$(uname -n | sed 's/[.]/\\./g')
bar="^$host cpu load avg\.: *[0-9]+%\|[^|]*\| *[0-9.]+/100 \[[0-9]{2}:[0-9]{2}"
grep -Eq "$bar" <<<"$mid" || bad "no cpu bar mid-run"
grep -Eq "$bar" <<<"$end" || bad "no cpu bar at the end"
[ "$(grep -Ec "$bar" <<<"$end")" -eq 1 ] || bad "the cpu bar scrolled (not redrawn in place)"
# In place, the history holds the header, one bar per row and the closing
# lines only, however many samples came.
n=$(printf '%s\n' "$end" | sed '/^$/d' | wc -l)
samples=$(wc -l <"$WORK/t.jsonl")
[ "$samples" -ge 8 ] || bad "only $samples samples: too few to tell"
[ "$n" -le 30 ] || bad "the pane's history has $n lines for $samples samples"
grep -q "^nodename: " <<<"$end" && bad "telemetry lines printed with --bars"
for l in "^Launching scipy and mnist jobs$" "^Shutting down procs$" \
    "^Post process is exiting$" "^Final test for learning rate 0.5: " \
    "^Final test for learning rate 1.5: "; do
    grep -Eq "$l" <<<"$end" || bad "the pane lacks /$l/"
done
no_leftovers tf_bars1_$$

# The log: one JSON object per sample, of this node, with its load.
python3 - "$WORK/t.jsonl" <<'PY' || bad "the telemetry log does not parse"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) >= 5, f"{len(rows)} samples"
for r in rows:
    assert isinstance(r, dict), r
    text = json.dumps(r)
    assert "load" in text, r
print(f"telemetry log: {len(rows)} samples, keys {sorted(rows[0])}")
PY
if command -v xmllint >/dev/null; then
    xmllint --noout "$WORK/t.svg" || bad "the SVG is not well-formed"
else
    python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' \
        "$WORK/t.svg" || bad "the SVG is not well-formed"
fi
grep -q "<svg" "$WORK/t.svg" || bad "no <svg> element in the plot"
finish
