# Least-privilege Consul ACL policy for consul-lambda-sync (the Lambda registrator).
#
#   consul acl policy create -name consul-lambda-sync -rules @docs/acl-policy.hcl
#   consul acl token create -description consul-lambda-sync -policy-name consul-lambda-sync
#   # store the token's SecretID as a SecureString and set CONSUL_HTTP_TOKEN_PATH to its name
#
# The end-to-end tests (tests/e2e/test_acl.py) run the registrator with a token made
# from exactly this file on an agent whose default policy is "deny".
#
# If you set NODE_NAME, replace "lambdas" below with it.
#
# `consul-lambda-sync doctor` checks a token against what your configuration needs and
# prints the rule to add for anything missing (README, "Doctor").

# PUT /v1/catalog/register and /v1/catalog/deregister on the registrator's external
# node, and GET /v1/catalog/node-services/lambdas.
node "lambdas" {
  policy = "write"
}

# - PUT /v1/catalog/register, /v1/catalog/deregister: service:write on each service;
# - PUT /v1/config, DELETE /v1/config/service-defaults/:name: a service-defaults
#   entry needs service:write on its service name; GET /v1/config/service-defaults
#   lists only the entries the token can read;
# - GET /v1/agent/connect/ca/leaf/:service (extension data only): service:write.
# Lambda service names are the function names (and NAME-ALIAS); if yours share a
# prefix, use it here instead of "".
service_prefix "" {
  policy = "write"
}

# GET /v1/catalog/services?filter=Node != "lambdas" (and /v1/catalog/service/:name),
# in every datacenter: before a name is taken, the registrator checks that no node
# but its own has it (docs/contract.md §5.3). Consul filters that list by node:read
# and service:read; a filtered list stops the sync (acl_filtered), so read them all.
node_prefix "" {
  policy = "read"
}

# GET /v1/agent/self, to learn the agent's datacenter. Not used when DATACENTER is set:
# then this rule can be dropped.
agent_prefix "" {
  policy = "read"
}

# Compared with upstream's documented policy (service_prefix "" write only): the node
# rule lets the registrator read its node (without node:read Consul filters the list,
# and the registrator stops with acl_filtered rather than act on it) and create the
# node the first time; node_prefix read lets it see the names other nodes use (a
# tagger cannot take one over); the agent rule is only for an unset DATACENTER.
#
# With extension data, peered upstreams also need peering = "read" (GET /v1/peerings);
# without it the extension data names no peer (an info record says so). Consul refuses
# that read only after its own retries (7-12 s), so the registrator first asks
# POST /v1/internal/acl/authorize (no rule needed) and skips the read when it is denied.
#
# Mesh wiring (opt-in, docs/mesh.md: TERMINATING_GATEWAY_NAME, EXPORTED_SERVICES_PEERS,
# EXPORTED_SERVICES_PARTITIONS) also needs the rule below; uncomment it then.
# - PUT /v1/config?cas=N of the terminating-gateway and exported-services entries:
#   mesh:write (or operator:write);
# - GET /v1/config/exported-services/:partition: mesh:read (given by mesh = "write");
# - GET /v1/config/terminating-gateway/:name: service:read on the gateway's name
#   (given by the service_prefix rule above).
# mesh = "write"
#
# Not needed: GET /v1/catalog/datacenters and /v1/agent/connect/ca/roots need no ACL.
#
# Consul Enterprise: grant the same rules inside every managed partition and
# namespace, e.g.
#
#   partition_prefix "" {
#     node "lambdas" { policy = "write" }
#     namespace_prefix "" {
#       service_prefix "" { policy = "write" }
#     }
#   }
