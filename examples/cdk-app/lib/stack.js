'use strict';
// The registrator, two application functions that it will register, and a function that
// calls mesh services through the consul-lambda-extension layer (ConsulMeshAccess).
const cdk = require('aws-cdk-lib');
const events = require('aws-cdk-lib/aws-events');
const lambda = require('aws-cdk-lib/aws-lambda');
const { ConsulLambdaRegistrator, ConsulMeshAccess, ConsulTags, InvocationMode } = require('consul-lambda-sync-cdk');

class ConsulLambdaStack extends cdk.Stack {
  /**
   * @param {import('constructs').Construct} scope
   * @param {string} id
   * @param {cdk.StackProps & {ordersInvocationMode?: string}} [props]
   */
  constructor(scope, id, props = {}) {
    super(scope, id, props);

    this.registrator = new ConsulLambdaRegistrator(this, 'Registrator', {
      consulHttpAddr: 'https://consul.internal.example.com:8501',
      tokenParameterName: '/consul/lambda-registrator/token',
      caCertParameterName: '/consul/lambda-registrator/ca-cert',
      consulExtensionDataPrefix: '/consul/lambda-extension-data',
      datacenter: 'dc1',
      schedule: events.Schedule.rate(cdk.Duration.minutes(5)),
    });

    const code = lambda.Code.fromInline('exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify(event) });');

    // Tags from typed options (checked by the core when the app runs).
    const billing = new lambda.Function(this, 'Billing', {
      functionName: 'billing',
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code,
    });
    ConsulTags.applyTo(billing, { aliases: ['live'], invocationMode: InvocationMode.SYNCHRONOUS, payloadPassthrough: true });
    // The alias its tags name (the registrator registers `billing-live` only for an alias that exists).
    billing.addAlias('live');

    // Tags by hand (checked by ConsulTagChecker at synth time).
    const orders = new lambda.Function(this, 'Orders', {
      functionName: 'orders',
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code,
    });
    cdk.Tags.of(orders).add(`${ConsulTags.TAG_PREFIX}enabled`, 'true');
    cdk.Tags.of(orders).add(`${ConsulTags.TAG_PREFIX}invocation-mode`, props.ordersInvocationMode || 'ASYNCHRONOUS');

    // A function that calls mesh services: registered too (the registrator writes its
    // certificate under the extension data prefix), and given mesh access in one call.
    const checkout = new lambda.Function(this, 'Checkout', {
      functionName: 'checkout',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code,
    });
    ConsulTags.applyTo(checkout, {});
    new ConsulMeshAccess(this, 'CheckoutMesh', {
      function: checkout,
      meshGatewayUri: 'mesh-gateway.internal.example.com:8443',
      extensionDataPrefix: '/consul/lambda-extension-data',
      upstreams: [
        { service: 'orders-api', port: 1234 },
        { service: 'ledger', namespace: 'finance', port: 1235, datacenter: 'dc2' },
      ],
    });
  }
}

module.exports = { ConsulLambdaStack };
