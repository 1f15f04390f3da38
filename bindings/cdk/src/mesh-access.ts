// Mesh access for a Lambda function (docs/lambda-to-mesh.md): the consul-lambda-extension
// layer, its variables, and the IAM to read the function's extension data — one construct.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ArnFormat,
  Duration,
  Stack,
  Token,
  aws_iam as iam,
  aws_kms as kms,
  aws_lambda as lambda,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { CoreDiagnostic, core } from './core';
import { RegistratorLogLevel } from './registrator';

/** One mesh service the function calls, through a listener on 127.0.0.1:`port` (an entry of CONSUL_SERVICE_UPSTREAMS). */
export interface MeshUpstream {
  /** The Consul service name. */
  readonly service: string;
  /** The local port the function connects to (127.0.0.1 or localhost), 1–65535, one per upstream. */
  readonly port: number;
  /** The service's namespace (Enterprise). @default - the function's namespace */
  readonly namespace?: string;
  /** The service's admin partition (Enterprise). @default - the function's partition */
  readonly partition?: string;
  /** The service's datacenter (a mesh gateway in `remote` or `local` mode forwards to it). @default - the registrator's datacenter */
  readonly datacenter?: string;
  /** The cluster peer that exports the service (the peering's local name); not with `datacenter` or `partition`. @default - not peered */
  readonly peer?: string;
}

/** Props of {@link ConsulMeshAccess}. */
export interface ConsulMeshAccessProps {
  /** The function that calls mesh services. Its name is its Consul service name. */
  readonly function: lambda.Function;
  /** The mesh gateway the function reaches, `host:port` (CONSUL_MESH_GATEWAY_URI). */
  readonly meshGatewayUri: string;
  /** The registrator's CONSUL_EXTENSION_DATA_PREFIX (the registrator's `consulExtensionDataPrefix`). */
  readonly extensionDataPrefix: string;
  /** The mesh services the function calls (CONSUL_SERVICE_UPSTREAMS). */
  readonly upstreams: MeshUpstream[];
  /**
   * The KMS key of the extension data parameters (the registrator's `extensionDataEncryptionKey`):
   * kms:Decrypt is granted on it only.
   * @default - the AWS managed key `alias/aws/ssm`: kms:Decrypt through Parameter Store, for this function's parameter only
   */
  readonly extensionDataEncryptionKey?: kms.IKey;
  /** The function's namespace (CONSUL_SERVICE_NAMESPACE, Enterprise). @default 'default' */
  readonly namespace?: string;
  /** The function's admin partition (CONSUL_SERVICE_PARTITION, Enterprise). @default 'default' */
  readonly partition?: string;
  /** How often the extension data is read again (CONSUL_REFRESH_FREQUENCY); also before the certificate expires. @default Duration.minutes(5) */
  readonly refreshFrequency?: Duration;
  /** Connect and handshake timeout of a connection (CONSUL_EXTENSION_PROXY_TIMEOUT). @default Duration.seconds(3) */
  readonly proxyTimeout?: Duration;
  /** The extension's log level (LOG_LEVEL; the function's own code sees it too). @default - not set: info */
  readonly logLevel?: RegistratorLogLevel;
  /** One log line per connection (TRACE_ENABLED). @default false */
  readonly traceEnabled?: boolean;
  /** A layer to use instead of the one shipped in this package (same layout: extensions/consul-lambda-extension). @default - the shipped layer for the function's architecture */
  readonly layer?: lambda.ILayerVersion;
}

const isToken = (v: unknown): boolean => typeof v === 'string' && Token.isUnresolved(v);

/** The upstream in CONSUL_SERVICE_UPSTREAMS' syntax (upstream's, or the labelled form for a peer). */
function upstreamEntry(u: MeshUpstream): string {
  if (u.peer !== undefined) {
    return `${u.service}.svc${u.namespace !== undefined ? `.${u.namespace}.ns` : ''}.${u.peer}.peer:${u.port}`;
  }
  const labels = [u.service];
  if (u.namespace !== undefined || u.partition !== undefined) labels.push(u.namespace ?? 'default');
  if (u.partition !== undefined) labels.push(u.partition);
  return `${labels.join('.')}:${u.port}${u.datacenter !== undefined ? `:${u.datacenter}` : ''}`;
}

/** A Duration as a Go duration (the extension's syntax). */
function goDuration(d: Duration): string {
  const ms = d.toMilliseconds();
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** Environment variable → the prop that sets it (for error messages). */
const ENV_TO_PROP: Record<string, string> = {
  CONSUL_MESH_GATEWAY_URI: 'meshGatewayUri',
  CONSUL_EXTENSION_DATA_PREFIX: 'extensionDataPrefix',
  CONSUL_SERVICE_UPSTREAMS: 'upstreams',
  CONSUL_SERVICE_NAMESPACE: 'namespace',
  CONSUL_SERVICE_PARTITION: 'partition',
  CONSUL_REFRESH_FREQUENCY: 'refreshFrequency',
  CONSUL_EXTENSION_PROXY_TIMEOUT: 'proxyTimeout',
  LOG_LEVEL: 'logLevel',
  AWS_LAMBDA_FUNCTION_NAME: 'function',
};

/**
 * Gives a Lambda function access to Consul mesh services, in one call: it adds the
 * consul-lambda-extension layer (shipped in this package for x86_64 and arm64, so synth
 * needs no network), sets the extension's variables on the function, and grants the
 * function's role ssm:GetParameter on exactly its extension data parameter
 * (`<prefix>/<partition>/<namespace>/<function name>`) and kms:Decrypt on that
 * parameter's key. The props are checked by the same core as the extension itself
 * (every problem at once, with the core's codes). The registrator writes the data when
 * its `consulExtensionDataPrefix` is set; the mesh needs a gateway and intentions
 * (docs/lambda-to-mesh.md).
 */
export class ConsulMeshAccess extends Construct {
  /**
   * The shipped extension layer for an architecture, one per stack.
   */
  public static sharedLayer(scope: Construct, architecture: lambda.Architecture): lambda.ILayerVersion {
    const stack = Stack.of(scope);
    const arch = architecture.name === lambda.Architecture.X86_64.name ? 'x86_64' : 'arm64';
    const id = `ConsulLambdaExtensionLayer-${arch}`;
    const existing = stack.node.tryFindChild(id);
    if (existing) return existing as lambda.ILayerVersion;
    const file = path.join(__dirname, '..', 'layer', `consul-lambda-extension-${arch}.zip`);
    if (!fs.existsSync(file)) {
      throw new Error(
        `ConsulMeshAccess: ${file} is missing from the consul-lambda-sync-cdk package (build it with scripts/build-cdk.sh), or pass a layer`,
      );
    }
    return new lambda.LayerVersion(stack, id, {
      code: lambda.Code.fromAsset(file),
      compatibleArchitectures: [architecture],
      description: `consul-lambda-extension ${core().version()} (${arch}): calls Consul mesh services from a Lambda function`,
      license: 'MPL-2.0',
    });
  }

  /** The layer added to the function. */
  public readonly layer: lambda.ILayerVersion;
  /** The ARN of the function's extension data parameter (the one it may read). */
  public readonly parameterArn: string;
  /** The variables set on the function. */
  public readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: ConsulMeshAccessProps) {
    super(scope, id);
    const fn = props.function;
    const stack = Stack.of(this);
    const cfn = fn.node.defaultChild as lambda.CfnFunction | undefined;
    // The literal name when the function has one (a plain ARN, granted before the function
    // is created); else a reference to the function.
    const literalName = cfn && typeof cfn.functionName === 'string' && !isToken(cfn.functionName) ? cfn.functionName : undefined;
    const functionName = literalName ?? fn.functionName;

    const env: Record<string, string> = {
      CONSUL_MESH_GATEWAY_URI: props.meshGatewayUri,
      CONSUL_EXTENSION_DATA_PREFIX: props.extensionDataPrefix,
      CONSUL_SERVICE_UPSTREAMS: (props.upstreams ?? []).map(upstreamEntry).join(','),
    };
    if (props.namespace !== undefined) env.CONSUL_SERVICE_NAMESPACE = props.namespace;
    if (props.partition !== undefined) env.CONSUL_SERVICE_PARTITION = props.partition;
    if (props.refreshFrequency !== undefined) env.CONSUL_REFRESH_FREQUENCY = goDuration(props.refreshFrequency);
    if (props.proxyTimeout !== undefined) env.CONSUL_EXTENSION_PROXY_TIMEOUT = goDuration(props.proxyTimeout);
    if (props.logLevel !== undefined) env.LOG_LEVEL = props.logLevel;
    if (props.traceEnabled) env.TRACE_ENABLED = 'true';
    const settings = checkSettings(props, env, literalName);

    const prefix = props.extensionDataPrefix.replace(/^\//, '');
    this.parameterArn = stack.formatArn({
      service: 'ssm',
      resource: 'parameter',
      resourceName: `${prefix}/${props.partition ?? 'default'}/${props.namespace ?? 'default'}/${functionName}`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    if (settings && literalName !== undefined && settings.parameterName !== `/${prefix}/${props.partition ?? 'default'}/${props.namespace ?? 'default'}/${literalName}`) {
      throw new Error(`ConsulMeshAccess: the parameter ${settings.parameterName} is not the one granted (${this.parameterArn})`);
    }

    this.layer = props.layer ?? ConsulMeshAccess.sharedLayer(this, fn.architecture);
    fn.addLayers(this.layer);
    for (const [k, v] of Object.entries(env)) fn.addEnvironment(k, v);
    this.environment = env;

    const statements = [
      new iam.PolicyStatement({ sid: 'ReadConsulExtensionData', actions: ['ssm:GetParameter'], resources: [this.parameterArn] }),
      new iam.PolicyStatement({
        sid: 'DecryptConsulExtensionData',
        actions: ['kms:Decrypt'],
        resources: [props.extensionDataEncryptionKey?.keyArn ?? stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
        conditions: {
          StringEquals: {
            'kms:ViaService': `ssm.${stack.region}.${stack.urlSuffix}`,
            'kms:EncryptionContext:PARAMETER_ARN': this.parameterArn,
          },
        },
      }),
    ];
    if (!fn.role) throw new Error('ConsulMeshAccess: the function has no role to grant the extension data to');
    if (literalName !== undefined) {
      for (const s of statements) fn.addToRolePolicy(s);
    } else {
      // A reference to the function in its own role's default policy would be a cycle (the
      // function waits for that policy): a policy of its own, created after the function.
      new iam.Policy(this, 'ReadExtensionData', { roles: [fn.role], statements });
    }
  }
}

/** The extension's own check of its settings (the core's `extensionSettings`), at synth time. */
function checkSettings(
  props: ConsulMeshAccessProps,
  env: Record<string, string>,
  literalName: string | undefined,
): { parameterName: string } | undefined {
  const c = core();
  const errors: (CoreDiagnostic & { prop: string })[] = [];
  const input: Record<string, string> = { AWS_LAMBDA_FUNCTION_NAME: literalName ?? 'function-name' };
  // A value only known at deploy time is not checked here.
  const tokenKeys = new Set<string>();
  for (const [k, v] of Object.entries(env)) {
    if (isToken(v)) tokenKeys.add(k);
    else input[k] = v;
  }
  if ((props.upstreams ?? []).length === 0) {
    errors.push({ code: 'missing_setting', key: 'CONSUL_SERVICE_UPSTREAMS', prop: 'upstreams', message: 'upstreams is empty: the function would reach no mesh service', hint: 'list the services the function calls, each with a local port' });
  }
  for (const u of props.upstreams ?? []) {
    if (u.peer !== undefined && (u.datacenter !== undefined || u.partition !== undefined)) {
      errors.push({ code: 'invalid_upstream', key: 'CONSUL_SERVICE_UPSTREAMS', prop: 'upstreams', value: upstreamEntry(u), message: `upstream ${u.service}: a peered service has no datacenter or partition of ours`, hint: 'give peer alone (the exporting cluster decides the rest)' });
    }
  }
  let settings: { parameterName: string } | undefined;
  try {
    settings = c.extensionSettings(input) as { parameterName: string };
  } catch (e) {
    if (!(e instanceof c.ConsulLambdaSyncError)) throw e;
    for (const d of e.errors) {
      if (d.key && tokenKeys.has(d.key)) continue;
      errors.push({ ...d, prop: (d.key && ENV_TO_PROP[d.key]) || d.key || '(props)' });
    }
  }
  if (errors.length === 0) return tokenKeys.size > 0 ? undefined : settings;
  const lines = errors.map(
    (d) => `[${d.code}] prop ${d.prop}${d.value !== undefined ? `=${JSON.stringify(d.value)}` : ''}: ${d.message} (fix: ${d.hint})`,
  );
  throw new c.ConsulLambdaSyncError({
    code: 'invalid_config',
    hint: 'fix each problem listed in `errors`',
    message: `ConsulMeshAccess: invalid props:\n  ${lines.join('\n  ')}`,
    errors,
  });
}
