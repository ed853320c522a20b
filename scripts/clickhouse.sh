#!/usr/bin/env bash
# Starts ClickHouse (Debian's clickhouse-server, 18.16 or newer) as our own processes,
# never the system service: a single server and/or a two-shard cluster on one machine,
# for the ClickHouse test suites and for trying forwarding locally (docs/scale-out.md).
# Idempotent: a node whose pid is alive and answers /ping is left alone; configs are
# (re)written each run. pixeltrack creates its own schema; this script creates none.
#
# usage: scripts/clickhouse.sh DIR BASEPORT {single|cluster|all|stop|status|start-node N|stop-node N|kill-node N} [PASSWORD]
#   single  -> node "single": http BASE+0, tcp BASE+1, interserver BASE+2
#   cluster -> node "shard1": http BASE+10.., node "shard2": http BASE+20..
#              cluster name in remote_servers: "pt" (2 shards x 1 replica)
#   all     -> single and cluster
#   start-node / stop-node / kill-node N -> one node (kill-node: SIGKILL)
#   users "default" and "pixeltrack", password PASSWORD (default "pt-secret");
#   everything binds 127.0.0.1; data, logs and pids live under DIR/<node>/.
#   ZooKeeper is not needed: pixeltrack's exactly-once forwarding works without it.
set -euo pipefail

DIR=${1:?DIR}
BASE=${2:?BASEPORT}
CMD=${3:-all}
NODE=${4:-}
case $CMD in start-node|stop-node|kill-node) PASS=${5:-pt-secret} ;; *) PASS=${4:-pt-secret} ;; esac
SERVER=${CLICKHOUSE_SERVER:-/usr/bin/clickhouse-server}
[[ -x $SERVER ]] || SERVER=/usr/sbin/clickhouse-server
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

ports() { # node -> "http tcp interserver"
  case $1 in
    single) echo $((BASE)) $((BASE+1)) $((BASE+2)) ;;
    shard1) echo $((BASE+10)) $((BASE+11)) $((BASE+12)) ;;
    shard2) echo $((BASE+20)) $((BASE+21)) $((BASE+22)) ;;
  esac
}

write_config() { # node
  local n=$1 d="$DIR/$1" http tcp inter shardno
  read -r http tcp inter < <(ports "$n")
  case $n in shard1) shardno=01 ;; shard2) shardno=02 ;; *) shardno=00 ;; esac
  mkdir -p "$d"/{data,tmp,user_files,format_schemas,log}
  cat > "$d/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>$d/log/server.log</log>
    <errorlog>$d/log/server.err.log</errorlog>
    <size>50M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <interserver_http_port>$inter</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path>
  <format_schema_path>$d/format_schemas/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <max_connections>256</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>32</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <builtin_dictionaries_reload_interval>0</builtin_dictionaries_reload_interval>
  <mlock_executable>false</mlock_executable>
  <remote_servers>
    <pt>
      <shard>
        <internal_replication>false</internal_replication>
        <replica><host>127.0.0.1</host><port>$((BASE+11))</port><user>default</user><password>$PASS</password></replica>
      </shard>
      <shard>
        <internal_replication>false</internal_replication>
        <replica><host>127.0.0.1</host><port>$((BASE+21))</port><user>default</user><password>$PASS</password></replica>
      </shard>
    </pt>
  </remote_servers>
  <macros>
    <shard>$shardno</shard>
    <replica>$n</replica>
  </macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
EOF
  echo "</yandex>" >> "$d/config.xml"

  cat > "$d/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <max_threads>2</max_threads>
      <use_uncompressed_cache>0</use_uncompressed_cache>
      <load_balancing>random</load_balancing>
    </default>
    <readonly><readonly>1</readonly></readonly>
  </profiles>
  <users>
    <default>
      <password>$PASS</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <pixeltrack>
      <password>$PASS</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </pixeltrack>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
EOF
}

alive() { # node
  local pidf="$DIR/$1/server.pid" http
  read -r http _ _ < <(ports "$1")
  [[ -f $pidf ]] && kill -0 "$(cat "$pidf")" 2>/dev/null &&
    curl -fsS "http://127.0.0.1:$http/ping" >/dev/null 2>&1
}

start() { # node
  local n=$1 d="$DIR/$1" http
  read -r http _ _ < <(ports "$n")
  write_config "$n"
  if alive "$n"; then echo "$n: already running (pid $(cat "$d/server.pid"), http $http)"; return; fi
  rm -f "$d/server.pid"
  # 18.16 has no --pid-file option: nohup execs the server, so $! is its pid.
  nohup "$SERVER" --config-file="$d/config.xml" >"$d/log/stdout.log" 2>&1 </dev/null &
  echo $! > "$d/server.pid"
  for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$http/ping" >/dev/null 2>&1; then
      echo "$n: started (pid $(cat "$d/server.pid" 2>/dev/null || echo ?), http $http)"; return; fi
    sleep 0.5
  done
  echo "$n: did not answer /ping in 30 s; see $d/log/" >&2; tail -20 "$d/log/server.err.log" >&2 || true
  return 1
}

stop() { # node
  local pidf="$DIR/$1/server.pid" pid
  [[ -f $pidf ]] || { echo "$1: not running"; return; }
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "${SIGNAL:--TERM}" "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "$1: stopped (pid $pid)"
  fi
  rm -f "$pidf"
}

case $CMD in
  single)    start single ;;
  cluster)   start shard1; start shard2 ;;
  all)       start single; start shard1; start shard2 ;;
  start-node) start "${NODE:?node}" ;;
  stop-node) stop "${NODE:?node}" ;;
  kill-node) SIGNAL=-KILL stop "${NODE:?node}" ;;
  stop)      for n in single shard1 shard2; do stop "$n"; done ;;
  status)    for n in single shard1 shard2; do
               if alive "$n"; then echo "$n: up (http $(ports "$n" | cut -d' ' -f1))"; else echo "$n: down"; fi
             done ;;
  *) echo "unknown command $CMD" >&2; exit 2 ;;
esac
