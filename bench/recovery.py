"""Recovery time after kill -9 with many points not yet compacted (issue 3's goal: under 5 s for 10 M).

usage: python3 bench/recovery.py [points per series, default 1000]   (10,000 series; 1000 -> 10 M points)
Needs a release build (cargo build --release). Everything runs on 127.0.0.1 with free ports, in /tmp/recov.
Writes through /api/v2/write with compaction switched off, kills bydata with SIGKILL, then times the
restart until /health answers and checks one series' count.
"""
import subprocess, time, urllib.request, os, signal, socket, json, sys
def free():
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); return p
d="/tmp/recov"; subprocess.run(["rm","-rf",d]); os.makedirs(d)
open(d+"/c.toml","w").write("[store]\ncompact_after_points = 1000000000000\ncompact_when_idle_ms = 36000000\n")
env=dict(os.environ, BYDATA_ADMIN_TOKEN="recovery-admin-token-123")
def start():
    http=free(); mqtt=free()
    p=subprocess.Popen([os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "bydata"),"serve","--config",d+"/c.toml","--data-dir",d+"/data","--http-addr",f"127.0.0.1:{http}","--mqtt-addr",f"127.0.0.1:{mqtt}"],env=env,stdout=subprocess.DEVNULL,stderr=open(d+"/log","a"))
    t0=time.time()
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/health",timeout=1); break
        except Exception: time.sleep(0.02)
    return p, http, time.time()-t0
p, http, _ = start()
N_SERIES=10000; PER=int(sys.argv[1]) if len(sys.argv)>1 else 1000
base=1_700_000_000_000_000_000
t0=time.time(); total=0
for chunk in range(PER//10):
    lines=[]
    for s in range(N_SERIES):
        for i in range(10):
            k=chunk*10+i
            lines.append(f"m,s=s{s} v={20+(k%50)/10} {base+k*600_000_000_000}")
    req=urllib.request.Request(f"http://127.0.0.1:{http}/api/v2/write?bucket=b",data="\n".join(lines).encode(),headers={"Authorization":"Token recovery-admin-token-123"},method="POST")
    assert urllib.request.urlopen(req).status==204
    total+=len(lines)
print(f"wrote {total} points in {time.time()-t0:.1f}s ({total/(time.time()-t0):.0f}/s)")
print("series/ bytes (write-ahead log, nothing flushed)", subprocess.run(["du","-sb",d+"/data/series"],capture_output=True,text=True).stdout.split()[0])
p.send_signal(signal.SIGKILL); p.wait()
p, http, took = start()
print(f"restart after kill -9 with {total} uncompacted points: ready in {took:.2f}s")
q=urllib.request.Request(f"http://127.0.0.1:{http}/api/v1/query?measurement=m&field=v&tag.s=s7&from=2023-01-01T00:00:00Z&to=2025-01-01T00:00:00Z&every=1y&fn=count&tz=UTC",headers={"Authorization":"Bearer recovery-admin-token-123"})
r=json.load(urllib.request.urlopen(q)); print("count s7:", sum(x["value"] or 0 for x in r["series"][0]["points"]))
p.send_signal(signal.SIGKILL); p.wait()
