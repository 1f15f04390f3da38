import { Annotations, AspectPriority, Aspects, CfnResource, IAspect, TagManager, Tags, Token, aws_lambda as lambda } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { CoreDiagnostic, core } from './core';

/** The prefix of every Consul tag. */
export const TAG_PREFIX = 'serverless.consul.hashicorp.com/v1alpha1/lambda/';

/** How Envoy invokes a registered function. */
export enum InvocationMode {
  SYNCHRONOUS = 'SYNCHRONOUS',
  ASYNCHRONOUS = 'ASYNCHRONOUS',
}

/** The registration of one function, as typed options (they become its Consul tags). */
export interface ConsulTagOptions {
  /** Register the function. @default true */
  readonly enabled?: boolean;
  /** Alias names, each registered as the service `NAME-ALIAS`. @default - none */
  readonly aliases?: string[];
  /** Consul datacenter. @default - the registrator's */
  readonly datacenter?: string;
  /** How Envoy invokes the function. @default InvocationMode.SYNCHRONOUS */
  readonly invocationMode?: InvocationMode;
  /** Consul namespace (Enterprise). @default - the default namespace */
  readonly namespace?: string;
  /** Consul admin partition (Enterprise). @default - the default partition */
  readonly partition?: string;
  /** Envoy passes the request body through unchanged. @default false */
  readonly payloadPassthrough?: boolean;
}

/** Settings of the tag helpers. */
export interface ConsulTagSettings {
  /** Consul Enterprise: namespace and partition tags allowed. @default false */
  readonly enterprise?: boolean;
}

/** Typed Consul tags: the tags of a registration, checked by the consul-lambda-sync core. */
export class ConsulTags {
  /** The prefix of every Consul tag: `serverless.consul.hashicorp.com/v1alpha1/lambda/`. */
  public static readonly TAG_PREFIX: string = TAG_PREFIX;

  /**
   * The tags that register a function with these options.
   * Throws an error naming the code, the option and the fix when an option is invalid.
   */
  public static of(options: ConsulTagOptions, settings?: ConsulTagSettings): { [key: string]: string } {
    const input: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options ?? {})) if (v !== undefined && v !== null) input[k] = v;
    return core().tagsFromOptions(input, !!settings?.enterprise);
  }

  /** Adds the tags of `options` to `scope` (Tags.of(scope).add) and returns them. */
  public static applyTo(scope: IConstruct, options: ConsulTagOptions, settings?: ConsulTagSettings): { [key: string]: string } {
    const tags = ConsulTags.of(options, settings);
    for (const [k, v] of Object.entries(tags)) Tags.of(scope).add(k, v);
    return tags;
  }

  private constructor() {}
}

/** Props of ConsulTagChecker. */
export interface ConsulTagCheckerProps {
  /** Consul Enterprise (namespace and partition tags allowed). @default false */
  readonly enterprise?: boolean;
  /** The partitions the registrator syncs (Enterprise). @default ['default'] */
  readonly partitions?: string[];
  /** The datacenter the registrator syncs. @default - any */
  readonly datacenter?: string;
}

const isToken = (v: unknown): boolean => typeof v === 'string' && Token.isUnresolved(v);

function warn(scope: IConstruct, id: string, message: string): void {
  Annotations.of(scope).addWarningV2(id, message);
}

/**
 * Checks the Consul tags of every Lambda function at synth time: each error becomes an error
 * annotation on the function naming it, the tag, the value and the fix (synth fails); each
 * warning (unknown tag, a value only known at deploy time) a warning annotation. Add it with
 * `ConsulTagChecker.applyTo(app)`, which uses priority READONLY so that it runs after the tag
 * aspects (Tags.of(x).add).
 */
export class ConsulTagChecker implements IAspect {
  /** Adds a checker to `scope` with priority READONLY (after every mutating aspect). */
  public static applyTo(scope: IConstruct, props?: ConsulTagCheckerProps): ConsulTagChecker {
    const checker = new ConsulTagChecker(props);
    Aspects.of(scope).add(checker, { priority: AspectPriority.READONLY });
    return checker;
  }

  private readonly enterprise: boolean;
  private readonly config: Record<string, unknown>;
  private readonly reported = new Set<IConstruct>();

  constructor(props: ConsulTagCheckerProps = {}) {
    this.enterprise = !!props.enterprise;
    const config: Record<string, unknown> = {};
    if (this.enterprise) {
      config.enterprise = true;
      config.partitions = props.partitions ?? ['default'];
    }
    if (props.datacenter) config.datacenter = props.datacenter;
    this.config = config;
  }

  public visit(node: IConstruct): void {
    if (!CfnResource.isCfnResource(node) || node.cfnResourceType !== 'AWS::Lambda::Function') return;
    if (this.reported.has(node)) return;
    this.reported.add(node);
    const cfn = node as lambda.CfnFunction;
    const parent = node.node.scope;
    const owner: IConstruct = parent && parent.node.defaultChild === node ? parent : node;
    const physical = cfn.functionName;
    const fnPath = typeof physical === 'string' && !isToken(physical) ? `${owner.node.path} (${physical})` : owner.node.path;
    const manager: TagManager | undefined = TagManager.isTaggable(cfn) ? cfn.tags : undefined;
    const all: Record<string, string> = manager?.tagValues() ?? {};
    const tags: Record<string, string> = {};
    let relevant = false;
    for (const [key, value] of Object.entries(all)) {
      if (isToken(key) || !key.startsWith(TAG_PREFIX)) continue;
      relevant = true;
      if (isToken(value)) {
        warn(
          owner,
          `consul-lambda-sync:token:${key}`,
          `function ${fnPath}: tag ${key} has a value that is only known at deploy time, so it cannot be checked at synth time (fix: use a literal value, or check the registrator's logs after deploying)`,
        );
        continue;
      }
      tags[key] = value;
    }
    if (!relevant) return;
    const c = core();
    const report = c.parseTags(tags, this.enterprise);
    const errors: CoreDiagnostic[] = [...report.errors];
    const warnings: CoreDiagnostic[] = [...report.warnings];
    if (errors.length === 0 && typeof physical === 'string' && !isToken(physical)) {
      const ev = c.evaluateFunction({ arn: `arn:aws:lambda:us-east-1:123456789012:function:${physical}`, name: physical, tags }, this.config);
      const seen = new Set([...errors, ...warnings].map((d) => `${d.code} ${d.key}`));
      for (const d of ev.errors) if (!seen.has(`${d.code} ${d.key}`)) errors.push(d);
      for (const d of ev.warnings) if (!seen.has(`${d.code} ${d.key}`)) warnings.push(d);
    }
    const describe = (d: CoreDiagnostic) =>
      `consul-lambda-sync: function ${fnPath}: tag ${d.key ?? '(none)'}${d.value !== undefined ? `=${JSON.stringify(d.value)}` : ''}: ${d.message} [${d.code}]. Fix: ${d.hint}`;
    for (const d of errors) Annotations.of(owner).addError(describe(d));
    for (const d of warnings) warn(owner, `consul-lambda-sync:${d.code}:${d.key ?? ''}`, describe(d));
  }
}
