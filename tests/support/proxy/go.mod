module consul-lambda-sync/bench/proxy

go 1.22
