package com.example.consullambdasync;

import com.example.consullambdasync.cdk.ConsulLambdaRegistrator;
import com.example.consullambdasync.cdk.ConsulMeshAccess;
import com.example.consullambdasync.cdk.ConsulTagChecker;
import com.example.consullambdasync.cdk.ConsulTagOptions;
import com.example.consullambdasync.cdk.ConsulTags;
import com.example.consullambdasync.cdk.InvocationMode;
import com.example.consullambdasync.cdk.MeshUpstream;
import com.example.consullambdasync.cdk.RegistratorRuntime;
import com.example.consullambdasync.cdk.TerminatingGatewayOptions;
import java.util.List;
import java.util.Map;
import software.amazon.awscdk.App;
import software.amazon.awscdk.CfnOutput;
import software.amazon.awscdk.Duration;
import software.amazon.awscdk.Stack;
import software.amazon.awscdk.Tags;
import software.amazon.awscdk.services.events.Schedule;
import software.amazon.awscdk.services.lambda.Architecture;
import software.amazon.awscdk.services.lambda.Code;
import software.amazon.awscdk.services.lambda.Function;
import software.amazon.awscdk.services.lambda.Runtime;

/**
 * The consul-lambda-sync registrator (the Python host, on x86_64), two functions it registers, and a
 * function that calls mesh services through the consul-lambda-extension layer (ConsulMeshAccess).
 * ORDERS_INVOCATION_MODE=async makes the orders function's tag invalid: the tag checker reports one
 * error naming the function, the tag and the fix.
 */
public final class ConsulLambdaApp {
  private ConsulLambdaApp() {}

  public static void main(final String[] args) {
    App app = new App();
    Stack stack = new Stack(app, "ConsulLambdaJava");

    ConsulLambdaRegistrator registrator = ConsulLambdaRegistrator.Builder.create(stack, "Registrator")
        .consulHttpAddr("https://consul.internal.example.com:8501")
        .tokenParameterName("/consul/lambda-registrator/token")
        .caCertParameterName("/consul/lambda-registrator/ca-cert")
        .datacenter("dc1")
        .runtime(RegistratorRuntime.PYTHON)
        .architecture(software.amazon.awscdk.services.lambda.Architecture.X86_64)
        .schedule(Schedule.rate(Duration.minutes(15)))
        .terminatingGateway(TerminatingGatewayOptions.builder().name("lambda-gateway").create(true).build())
        .build();

    Code code = Code.fromInline("exports.handler = async (e) => ({ statusCode: 200 });");
    Function billing = Function.Builder.create(stack, "Billing")
        .functionName("billing").runtime(Runtime.NODEJS_22_X).handler("index.handler").code(code).build();
    Map<String, String> tags = ConsulTags.applyTo(billing, ConsulTagOptions.builder()
        .aliases(List.of("live")).invocationMode(InvocationMode.SYNCHRONOUS).build());
    if (!"SYNCHRONOUS".equals(tags.get(ConsulTags.TAG_PREFIX + "invocation-mode"))) {
      throw new IllegalStateException("typed tags: " + tags);
    }
    // The alias its tags name (the registrator registers `billing-live` only for an alias that exists).
    billing.addAlias("live");

    Function orders = Function.Builder.create(stack, "Orders")
        .functionName("orders").runtime(Runtime.NODEJS_22_X).handler("index.handler").code(code).build();
    String mode = System.getenv().getOrDefault("ORDERS_INVOCATION_MODE", "ASYNCHRONOUS");
    Tags.of(orders).add(ConsulTags.TAG_PREFIX + "enabled", "true");
    Tags.of(orders).add(ConsulTags.TAG_PREFIX + "invocation-mode", mode);

    // A function that calls mesh services, given mesh access in one call.
    Function checkout = Function.Builder.create(stack, "Checkout")
        .functionName("checkout").runtime(Runtime.NODEJS_22_X).architecture(Architecture.ARM_64)
        .handler("index.handler").code(code).build();
    ConsulMeshAccess.Builder.create(stack, "CheckoutMesh")
        .function(checkout)
        .meshGatewayUri("mesh-gateway.internal.example.com:8443")
        .extensionDataPrefix("/consul/lambda-extension-data")
        .upstreams(List.of(
            MeshUpstream.builder().service("orders-api").port(1234).build(),
            MeshUpstream.builder().service("ledger").namespace("finance").port(1235).datacenter("dc2").build()))
        .build();

    ConsulTagChecker.applyTo(app);
    CfnOutput.Builder.create(stack, "RegistratorFunction").value(registrator.getFunction().getFunctionName()).build();
    app.synth();
  }
}
