// The official JavaScript Kubernetes client (@kubernetes/client-node, pinned in package.json)
// against tests/fakes/k8s_fake.py: create, read, replace, patch, list (selectors, paging),
// watch, logs and delete on every kind the fake serves, and the error answers (401, 404, 409
// AlreadyExists and Conflict, 415, 422) as ApiException with the Status body.
//
// Usage: node k8s-client-node.mjs KUBECONFIG   (tests/k8s/run-client-node starts the fake)
// Prints one "ok - ..." line per check; exits 1 at the first failure.
import * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';

const kubeconfig = process.argv[2];
if (!kubeconfig) {
  console.error('usage: node k8s-client-node.mjs KUBECONFIG');
  process.exit(2);
}
const kc = new k8s.KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const hpa = kc.makeApiClient(k8s.AutoscalingV2Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
const NS = 'client-node';
let checks = 0;

function ok(what) {
  checks += 1;
  console.log(`ok ${checks} - ${what}`);
}

function bodyOf(e) {
  assert.ok(e instanceof k8s.ApiException, `expected an ApiException, got ${e}`);
  return typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
}

async function fails(promise, code, reason) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.code, code, `HTTP ${e.code}: ${e.body}`);
    const st = bodyOf(e);
    assert.equal(st.kind, 'Status');
    assert.equal(st.status, 'Failure');
    assert.equal(st.code, code);
    if (reason) assert.equal(st.reason, reason, st.message);
    return st;
  }
  assert.fail(`expected HTTP ${code} ${reason || ''}`);
}

const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const strategic = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

async function pollUntil(read, pred, what) {
  for (let i = 0; i < 20; i++) {
    const o = await read();
    if (pred(o)) return o;
  }
  assert.fail(`${what}: not reached after 20 polls`);
}

async function main() {
  // ---------------------------------------------------------------- namespaces
  const ns = await core.createNamespace({body: {metadata: {name: NS}}});
  assert.equal(ns.metadata.name, NS);
  assert.ok(ns.metadata.creationTimestamp instanceof Date, 'creationTimestamp is a Date');
  assert.equal(ns.status.phase, 'Active');
  await fails(core.createNamespace({body: {metadata: {name: NS}}}), 409, 'AlreadyExists');
  ok('namespace created; a second create is 409 AlreadyExists');

  // ---------------------------------------------------------------- deployments
  const dep = {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: {name: 'm1', labels: {app: 'm1', tier: 'web'}},
    spec: {
      replicas: 1, selector: {matchLabels: {app: 'm1'}},
      template: {
        metadata: {labels: {app: 'm1'}},
        spec: {containers: [{name: 'main', image: 'img:1', ports: [{containerPort: 8080}],
                             resources: {limits: {'nvidia.com/gpu': '1'}}}]},
      },
    },
  };
  const d1 = await apps.createNamespacedDeployment({namespace: NS, body: dep});
  assert.equal(d1.metadata.generation, 1);
  assert.match(d1.metadata.uid, /^[0-9a-f-]{36}$/);
  assert.match(d1.metadata.resourceVersion, /^[0-9]+$/);
  assert.equal(d1.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'], '1');
  assert.equal(d1.spec.strategy.type, 'RollingUpdate');
  ok('deployment created with uid, resourceVersion, generation 1 and defaults');

  const bad = structuredClone(dep);
  bad.metadata.name = 'm2';
  bad.spec.template.metadata.labels = {app: 'other'};
  let st = await fails(apps.createNamespacedDeployment({namespace: NS, body: bad}), 422,
                       'Invalid');
  assert.equal(st.details.kind, 'Deployment');
  assert.equal(st.details.causes[0].field, 'spec.template.metadata.labels');
  ok('a selector that does not match the template labels is 422 Invalid');

  const ready = await pollUntil(() => apps.readNamespacedDeployment({name: 'm1', namespace: NS}),
                                (d) => d.status && d.status.readyReplicas === 1,
                                'deployment ready');
  assert.equal(ready.status.observedGeneration, 1);
  assert.ok(ready.status.conditions.some((c) => c.type === 'Available' && c.status === 'True'));
  const rs = await apps.readNamespacedDeploymentStatus({name: 'm1', namespace: NS});
  assert.equal(rs.status.availableReplicas, 1);
  ok('the simulated controller makes the deployment Available (status subresource read)');

  const stale = structuredClone(d1);
  stale.spec.replicas = 3;
  st = await fails(apps.replaceNamespacedDeployment({name: 'm1', namespace: NS, body: stale}),
                   409, 'Conflict');
  assert.equal(st.details.kind, 'deployments');
  const fresh = await apps.readNamespacedDeployment({name: 'm1', namespace: NS});
  fresh.spec.replicas = 3;
  const d2 = await apps.replaceNamespacedDeployment({name: 'm1', namespace: NS, body: fresh});
  assert.equal(d2.spec.replicas, 3);
  assert.equal(d2.metadata.generation, 2);
  ok('replace with a stale resourceVersion is 409 Conflict; with the fresh one bumps generation');

  const d3 = await apps.patchNamespacedDeployment(
    {name: 'm1', namespace: NS, body: {spec: {template: {spec: {containers: [
      {name: 'main', image: 'img:2'}]}}}}}, strategic);
  const c = d3.spec.template.spec.containers;
  assert.equal(c.length, 1);
  assert.equal(c[0].image, 'img:2');
  assert.equal(c[0].ports[0].containerPort, 8080, 'strategic merge keeps the ports');
  const d4 = await apps.patchNamespacedDeployment(
    {name: 'm1', namespace: NS, body: {metadata: {labels: {tier: null}}}}, merge);
  assert.equal(d4.metadata.labels.tier, undefined);
  assert.equal(d4.metadata.generation, 3, 'a label change does not bump the generation');
  const d5 = await apps.patchNamespacedDeployment(
    {name: 'm1', namespace: NS, body: [{op: 'replace', path: '/spec/replicas', value: 2}]});
  assert.equal(d5.spec.replicas, 2);
  ok('strategic-merge (containers merged by name), merge (null deletes) and json patches');

  const scale = await apps.readNamespacedDeploymentScale({name: 'm1', namespace: NS});
  assert.equal(scale.kind, 'Scale');
  assert.equal(scale.spec.replicas, 2);
  assert.equal(scale.status.selector, 'app=m1');
  ok('the scale subresource');

  for (const n of ['a1', 'a2', 'a3', 'b1']) {
    const o = structuredClone(dep);
    o.metadata.name = n;
    o.metadata.labels = {app: 'm1', group: n[0]};
    await apps.createNamespacedDeployment({namespace: NS, body: o});
  }
  let list = await apps.listNamespacedDeployment({namespace: NS, labelSelector: 'group in (a)'});
  assert.equal(list.kind, 'DeploymentList');
  assert.deepEqual(list.items.map((o) => o.metadata.name), ['a1', 'a2', 'a3']);
  list = await apps.listNamespacedDeployment({namespace: NS, labelSelector: 'group!=a,group'});
  assert.deepEqual(list.items.map((o) => o.metadata.name), ['b1']);
  const names = [];
  let cont;
  let pages = 0;
  do {
    const page = await apps.listNamespacedDeployment({namespace: NS, limit: 2, _continue: cont});
    names.push(...page.items.map((o) => o.metadata.name));
    cont = page.metadata._continue;
    pages += 1;
    if (cont) assert.ok(page.metadata.remainingItemCount > 0);
  } while (cont);
  assert.deepEqual(names, ['a1', 'a2', 'a3', 'b1', 'm1']);
  assert.equal(pages, 3);
  await fails(apps.listNamespacedDeployment({namespace: NS, labelSelector: 'a in (b'}), 400,
              'BadRequest');
  ok('list: label selectors (in, !=, exists), limit/continue paging over 3 pages, bad selector');

  const all = await apps.listDeploymentForAllNamespaces({fieldSelector: 'metadata.name=b1'});
  assert.deepEqual(all.items.map((o) => o.metadata.namespace + '/' + o.metadata.name),
                   [NS + '/b1']);
  ok('list across namespaces with a field selector');

  const del = await apps.deleteNamespacedDeployment({name: 'b1', namespace: NS});
  assert.equal(del.status, 'Success');
  await fails(apps.readNamespacedDeployment({name: 'b1', namespace: NS}), 404, 'NotFound');
  await fails(apps.deleteNamespacedDeployment({name: 'b1', namespace: NS}), 404, 'NotFound');
  ok('delete answers a Success Status; then read and delete are 404 NotFound');

  // ---------------------------------------------------------------- services, pods, logs
  const svc = await core.createNamespacedService({namespace: NS, body: {
    metadata: {name: 'm1'}, spec: {selector: {app: 'm1'}, ports: [{port: 80, targetPort: 8080}]}}});
  assert.equal(svc.spec.type, 'ClusterIP');
  assert.match(svc.spec.clusterIP, /^10\.96\./);
  assert.equal(svc.spec.ports[0].protocol, 'TCP');
  await fails(core.createNamespacedService({namespace: NS, body: {
    metadata: {name: '1bad'}, spec: {ports: [{port: 80}]}}}), 422, 'Invalid');
  await core.deleteNamespacedService({name: 'm1', namespace: NS});
  ok('service: defaults and a cluster IP; a DNS-1035-invalid name is 422');

  await core.createNamespacedPod({namespace: NS, body: {
    metadata: {name: 'p1'}, spec: {containers: [{name: 'main', image: 'busybox:1'}]}}});
  const pod = await pollUntil(() => core.readNamespacedPod({name: 'p1', namespace: NS}),
                              (p) => p.status.phase === 'Running', 'pod running');
  assert.equal(pod.status.containerStatuses[0].ready, true);
  const logs = await core.readNamespacedPodLog({name: 'p1', namespace: NS, container: 'main',
                                                tailLines: 1});
  assert.equal(typeof logs, 'string');
  assert.equal(logs.trim().split('\n').length, 1);
  await core.deleteNamespacedPod({name: 'p1', namespace: NS});
  ok('pod: Pending then Running; its log (text/plain, tailLines)');

  // ---------------------------------------------------------------- jobs, HPAs
  await fails(batch.createNamespacedJob({namespace: NS, body: {
    metadata: {name: 'j0'}, spec: {template: {spec: {containers: [
      {name: 'main', image: 'busybox:1'}]}}}}}), 422, 'Invalid');
  await batch.createNamespacedJob({namespace: NS, body: {
    metadata: {name: 'j1', annotations: {'fake.llm-ops/outcome': 'failed',
                                         'fake.llm-ops/polls': '1'}},
    spec: {template: {spec: {restartPolicy: 'Never', containers: [
      {name: 'main', image: 'busybox:1'}]}}}}});
  const job = await batch.readNamespacedJob({name: 'j1', namespace: NS});
  assert.ok(job.status.conditions.some((x) => x.type === 'Failed' && x.status === 'True'));
  assert.ok(job.status.startTime instanceof Date);
  await batch.deleteNamespacedJob({name: 'j1', namespace: NS, propagationPolicy: 'Background'});
  ok('job: restartPolicy Always is 422; an annotation scripts the Failed outcome');

  const h = await hpa.createNamespacedHorizontalPodAutoscaler({namespace: NS, body: {
    metadata: {name: 'm1'}, spec: {scaleTargetRef: {apiVersion: 'apps/v1', kind: 'Deployment',
                                                    name: 'm1'}, maxReplicas: 4}}});
  assert.equal(h.spec.minReplicas, 1);
  assert.equal(h.spec.metrics[0].resource.target.averageUtilization, 80);
  const hl = await hpa.listNamespacedHorizontalPodAutoscaler({namespace: NS});
  assert.equal(hl.items.length, 1);
  await hpa.deleteNamespacedHorizontalPodAutoscaler({name: 'm1', namespace: NS});
  ok('autoscaling/v2 HPA: defaults, list, delete');

  // ---------------------------------------------------------------- InferenceServices
  const G = 'serving.kserve.io';
  const V = 'v1beta1';
  const isvc = {apiVersion: `${G}/${V}`, kind: 'InferenceService',
                metadata: {name: 'llama3-8b', labels: {'app.kubernetes.io/managed-by': 'llmops'},
                           annotations: {'serving.kserve.io/deploymentMode': 'Serverless'}},
                spec: {predictor: {minReplicas: 1, model: {modelFormat: {name: 'huggingface'},
                                                          storageUri: 'hf://org/m'}}}};
  const i1 = await custom.createNamespacedCustomObject({group: G, version: V, namespace: NS,
                                                        plural: 'inferenceservices', body: isvc});
  assert.equal(i1.metadata.generation, 1);
  await fails(custom.createNamespacedCustomObject({group: G, version: V, namespace: NS,
                                                   plural: 'inferenceservices', body: isvc}),
              409, 'AlreadyExists');
  st = await fails(custom.createNamespacedCustomObject({group: G, version: V, namespace: NS,
    plural: 'inferenceservices', body: {apiVersion: `${G}/${V}`, kind: 'InferenceService',
                                        metadata: {name: 'x'}, spec: {}}}), 422, 'Invalid');
  assert.deepEqual(st.details.causes.map((x) => [x.reason, x.field]),
                   [['FieldValueRequired', 'spec.predictor']]);
  ok('InferenceService created; 409 AlreadyExists; a missing spec.predictor is 422');

  const got = await pollUntil(() => custom.getNamespacedCustomObject({group: G, version: V,
    namespace: NS, plural: 'inferenceservices', name: 'llama3-8b'}),
    (o) => (o.status?.conditions || []).some((x) => x.type === 'Ready' && x.status === 'True'),
    'isvc ready');
  assert.equal(got.status.url, `http://llama3-8b.${NS}.example.com`);
  assert.equal(got.status.components.predictor.traffic[0].percent, 100);
  assert.equal(got.status.observedGeneration, 1);
  ok('the simulated KServe controller writes Ready, url, traffic and observedGeneration');

  const p1 = await custom.patchNamespacedCustomObject({group: G, version: V, namespace: NS,
    plural: 'inferenceservices', name: 'llama3-8b',
    body: {spec: {predictor: {canaryTrafficPercent: 20, model: {storageUri: 'hf://org/m2'}}}}},
    merge);
  assert.equal(p1.metadata.generation, 2);
  await fails(custom.patchNamespacedCustomObject({group: G, version: V, namespace: NS,
    plural: 'inferenceservices', name: 'llama3-8b', body: {spec: {}}}, strategic),
              415, 'UnsupportedMediaType');
  const canary = await pollUntil(() => custom.getNamespacedCustomObject({group: G, version: V,
    namespace: NS, plural: 'inferenceservices', name: 'llama3-8b'}),
    (o) => o.status.observedGeneration === 2 &&
      o.status.conditions.some((x) => x.type === 'Ready' && x.status === 'True'),
    'isvc generation 2 ready');
  const traffic = canary.status.components.predictor.traffic;
  assert.deepEqual(traffic.map((t) => [t.tag, t.percent]), [['latest', 20], ['prev', 80]]);
  ok('merge patch bumps the generation; a canary splits traffic 20/80; strategic is 415');

  const il = await custom.listNamespacedCustomObject({group: G, version: V, namespace: NS,
    plural: 'inferenceservices', labelSelector: 'app.kubernetes.io/managed-by=llmops'});
  assert.equal(il.kind, 'InferenceServiceList');
  assert.equal(il.items.length, 1);
  const idel = await custom.deleteNamespacedCustomObject({group: G, version: V, namespace: NS,
    plural: 'inferenceservices', name: 'llama3-8b'});
  assert.equal(idel.status, 'Success');
  assert.equal(idel.details.uid, i1.metadata.uid);
  ok('list by label, delete answers Success with details.uid');

  // ---------------------------------------------------------------- Workflows, generic API, watch
  const wf = await custom.createNamespacedCustomObject({group: 'argoproj.io', version: 'v1alpha1',
    namespace: NS, plural: 'workflows', body: {apiVersion: 'argoproj.io/v1alpha1', kind: 'Workflow',
      metadata: {generateName: 'finetune-'},
      spec: {entrypoint: 'main', templates: [{name: 'main', container: {image: 'python:3.11'}}]}}});
  assert.match(wf.metadata.name, /^finetune-[a-z0-9]{5}$/);
  const done = await pollUntil(() => custom.getNamespacedCustomObject({group: 'argoproj.io',
    version: 'v1alpha1', namespace: NS, plural: 'workflows', name: wf.metadata.name}),
    (o) => o.status?.phase === 'Succeeded', 'workflow succeeded');
  assert.ok(done.status.finishedAt);
  ok('Workflow with generateName runs to Succeeded');

  const gen = structuredClone(dep);
  gen.metadata = {name: 'generic', namespace: NS, labels: {app: 'm1'}};
  const created = await objects.create(gen);
  assert.equal(created.kind, 'Deployment');
  const read = await objects.read({apiVersion: 'apps/v1', kind: 'Deployment',
                                   metadata: {name: 'generic', namespace: NS}});
  assert.equal(read.metadata.uid, created.metadata.uid);
  const patched = await objects.patch({apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: {name: 'generic', namespace: NS}, spec: {replicas: 5}}, undefined, undefined,
    undefined, undefined, k8s.PatchStrategy.MergePatch);
  assert.equal(patched.spec.replicas, 5);
  const glist = await objects.list('apps/v1', 'Deployment', NS);
  assert.ok(glist.items.some((o) => o.metadata.name === 'generic'));
  await objects.delete({apiVersion: 'apps/v1', kind: 'Deployment',
                        metadata: {name: 'generic', namespace: NS}});
  ok('KubernetesObjectApi (resource found through discovery): create, read, patch, list, delete');

  const events = [];
  const watch = new k8s.Watch(kc);
  const ctl = await watch.watch(`/apis/apps/v1/namespaces/${NS}/deployments`,
                                {labelSelector: 'group=a'},
                                (type, obj) => events.push([type, obj.metadata.name]),
                                () => {});
  await new Promise((r) => setTimeout(r, 200));
  await apps.deleteNamespacedDeployment({name: 'a3', namespace: NS});
  for (let i = 0; i < 50 && !events.some((e) => e[0] === 'DELETED'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  ctl.abort();
  assert.deepEqual(events.filter((e) => e[0] === 'ADDED').map((e) => e[1]), ['a1', 'a2', 'a3']);
  assert.ok(events.some((e) => e[0] === 'DELETED' && e[1] === 'a3'), JSON.stringify(events));
  ok('watch: ADDED for what exists, then DELETED');

  // ---------------------------------------------------------------- auth
  const anon = new k8s.KubeConfig();
  anon.loadFromFile(kubeconfig);
  anon.users[0].token = 'wrong';
  try {
    await anon.makeApiClient(k8s.CoreV1Api).listNamespace();
    assert.fail('expected 401');
  } catch (e) {
    // the generated client reads no body for 401 (its OpenAPI answer has none)
    assert.ok(e instanceof k8s.ApiException, String(e));
    assert.equal(e.code, 401);
    assert.equal(e.message.split('\n')[1], 'Message: Unauthorized');
  }
  ok('a wrong token is 401 Unauthorized');

  await core.deleteNamespace({name: NS});
  console.log(`1..${checks}`);
}

main().catch((e) => {
  console.error('not ok -', e && e.stack ? e.stack : e, e && e.body ? e.body : '');
  process.exit(1);
});
