package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// k8sDecoder decodes manifests into the k8s.io/api types the way
// `kubectl apply --validate=strict` has the API server do: unknown and
// duplicate fields and wrong types are errors. It knows the kinds we ship.
var k8sDecoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

// manifest is one decoded document.
type manifest struct {
	where string // file#n
	obj   runtime.Object
}

// decodeManifests decodes every document of files, strictly.
func decodeManifests(t *testing.T, files ...string) []manifest {
	t.Helper()
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := decodeDocuments(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, obj := range docs {
			out = append(out, manifest{where: fmt.Sprintf("%s#%d", f, i+1), obj: obj})
		}
	}
	return out
}

func decodeDocuments(b []byte) ([]runtime.Object, error) {
	var out []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if j, err := yaml.YAMLToJSON(doc); err == nil && string(j) == "null" {
			continue // only comments
		}
		obj, _, err := k8sDecoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		out = append(out, obj)
	}
}

// shipped is deploy/k8s, decoded.
type shipped struct {
	all         []manifest
	deployments []*appsv1.Deployment
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
}

func readK8s(t *testing.T) shipped {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s (%v)", err)
	}
	s := shipped{all: decodeManifests(t, files...), configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, m := range s.all {
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			s.deployments = append(s.deployments, o)
		case *corev1.ConfigMap:
			s.configMaps[o.Name] = o
		case *corev1.Secret:
			s.secrets[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			s.pdbs = append(s.pdbs, o)
		case *corev1.Namespace:
		default:
			t.Errorf("%s: %T: add its checks to kubernetes_test.go", m.where, o)
		}
	}
	return s
}

// The decoder must refuse what the API server refuses, or the tests below
// prove nothing.
func TestKubernetesDecodingIsStrict(t *testing.T) {
	for _, bad := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: \"2\"}\n",          // wrong type
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n",               // unknown field
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2, replicas: 3}\n", // duplicate field
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: 1}\n",                           // a number, not a string
		"apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n",                                   // unknown kind
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: c, imagePullPolicy: IfNotPresent, ports: [{containerPort: http}]}]}}}\n",
	} {
		if _, err := decodeDocuments([]byte(bad)); err == nil {
			t.Errorf("decoded without error:\n%s", bad)
		}
	}
	if _, err := decodeDocuments([]byte("# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")); err != nil {
		t.Errorf("a valid manifest: %v", err)
	}
}

// TestKubernetes: every manifest decodes strictly (readK8s), and the pods
// run binaries that exist, with variables they read, from keys the shipped
// ConfigMap and Secret example hold, on the port HTTP_ADDR serves, with
// probes on declared ports, selectors that select the pods, and our image
// at the pinned version.
func TestKubernetes(t *testing.T) {
	s := readK8s(t)
	for _, m := range s.all {
		meta, err := metaOf(m.obj)
		if err != nil {
			t.Fatalf("%s: %v", m.where, err)
		}
		for _, msg := range validation.IsDNS1123Subdomain(meta.GetName()) {
			t.Errorf("%s: name %q: %s", m.where, meta.GetName(), msg)
		}
		if _, ok := m.obj.(*corev1.Namespace); !ok && meta.GetNamespace() != "cowjacket" {
			t.Errorf("%s: namespace %q, want cowjacket", m.where, meta.GetNamespace())
		}
	}
	names := map[string]bool{}
	for _, d := range s.deployments {
		names[d.Name] = true
		checkDeployment(t, s, d)
	}
	for _, want := range []string{"capture", "ticketer"} {
		if !names[want] {
			t.Errorf("no %s Deployment in deploy/k8s", want)
		}
	}
	for _, pdb := range s.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("PodDisruptionBudget %s: selector %v (%v)", pdb.Name, pdb.Spec.Selector, err)
			continue
		}
		n := 0
		for _, d := range s.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("PodDisruptionBudget %s selects the pods of %d Deployments, want 1", pdb.Name, n)
		}
	}
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

func checkDeployment(t *testing.T, s shipped, d *appsv1.Deployment) {
	t.Helper()
	where := "deployment " + d.Name
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	switch {
	case err != nil:
		t.Errorf("%s: selector: %v", where, err)
	case sel.Empty():
		t.Errorf("%s: empty selector", where)
	case !sel.Matches(labels.Set(d.Spec.Template.Labels)):
		t.Errorf("%s: selector %s does not match the template's labels %v", where, sel, d.Spec.Template.Labels)
	}
	if d.Spec.Replicas == nil {
		t.Errorf("%s: replicas not set", where)
	}
	pod := d.Spec.Template.Spec
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if cm := v.ConfigMap; cm != nil {
			if s.configMaps[cm.Name] == nil {
				t.Errorf("%s: volume %s mounts ConfigMap %s, not in deploy/k8s", where, v.Name, cm.Name)
			}
			for _, it := range cm.Items {
				checkConfigMapKey(t, s, where+" volume "+v.Name, cm.Name, it.Key)
			}
		}
	}
	vars := known()
	for _, c := range pod.Containers {
		where := where + " container " + c.Name
		bin := binOf(c.Command)
		if !binaryExists(bin) {
			t.Errorf("%s runs %q: no such binary", where, bin)
			continue
		}
		checkSubcommand(t, where, bin, append(c.Command[1:], c.Args...))
		if checkOurImage(t, where, c.Image) && c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("%s: imagePullPolicy %q, want IfNotPresent (the tag is a release)", where, c.ImagePullPolicy)
		}
		env := map[string]string{} // resolved values
		for _, e := range c.Env {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				t.Errorf("%s: env %q: %s", where, e.Name, msg)
			}
			if !vars[bin][e.Name] {
				t.Errorf("%s sets %s, which %s does not read", where, e.Name, bin)
			}
			if varOf(bin, e.Name).Secret {
				t.Errorf("%s sets secret %s in the environment: mount it from a Secret and set %s_FILE", where, e.Name, e.Name)
			}
			env[e.Name] = e.Value
			if e.ValueFrom == nil {
				continue
			}
			if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
				env[e.Name] = checkConfigMapKey(t, s, where+" env "+e.Name, ref.Name, ref.Key)
			}
			if ref := e.ValueFrom.SecretKeyRef; ref != nil {
				checkSecretKey(t, s, where+" env "+e.Name, ref.Name, ref.Key)
			}
		}
		for _, ef := range c.EnvFrom {
			t.Errorf("%s: envFrom %v: name each variable (env) so this test can check it", where, ef)
		}
		port := defaultPort(t, bin)
		if a, ok := env["HTTP_ADDR"]; ok {
			port = portOf(a)
		}
		ports := map[string]int32{}
		declared := map[int32]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
			declared[p.ContainerPort] = true
		}
		if !declared[atoi32(port)] {
			t.Errorf("%s: containerPorts %v, want HTTP_ADDR's %s", where, c.Ports, port)
		}
		if got := d.Spec.Template.Annotations["prometheus.io/port"]; got != port {
			t.Errorf("%s: prometheus.io/port %q, want %s", where, got, port)
		}
		for _, pr := range []struct {
			name, path string
			probe      *corev1.Probe
		}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", where, pr.name)
				continue
			}
			if pr.probe.HTTPGet.Path != pr.path {
				t.Errorf("%s: %s probe path %q, want %s", where, pr.name, pr.probe.HTTPGet.Path, pr.path)
			}
			p := pr.probe.HTTPGet.Port
			n := int32(p.IntValue())
			if p.Type == intstr.String {
				var ok bool
				if n, ok = ports[p.StrVal]; !ok {
					t.Errorf("%s: %s probe port %q is not a declared container port", where, pr.name, p.StrVal)
					continue
				}
			}
			if !declared[n] || strconv.Itoa(int(n)) != port {
				t.Errorf("%s: %s probe port %s (%d): want the declared HTTP_ADDR port %s", where, pr.name, p.String(), n, port)
			}
		}
		// A file a variable names (*_FILE, NATS_TLS_CA, JIRA_CA_FILE, …)
		// comes from a mounted ConfigMap or Secret that has it as a key (not
		// from whatever the image holds).
		for name, val := range env {
			if varOf(bin, name).File {
				checkMountedFile(t, s, volumes, c.VolumeMounts, fmt.Sprintf("%s %s=%s", where, name, val), val)
			}
		}
		for _, vm := range c.VolumeMounts {
			if _, ok := volumes[vm.Name]; !ok {
				t.Errorf("%s mounts volume %s, which the pod does not declare", where, vm.Name)
			}
		}
		// So do the files DATABASE_URL names (sslrootcert, sslcert, sslkey).
		if strings.HasSuffix(env["DATABASE_URL_FILE"], "/DATABASE_URL") {
			for _, sec := range s.secrets {
				if u, ok := sec.StringData["DATABASE_URL"]; ok {
					checkDSNFiles(t, s, volumes, c.VolumeMounts, where, u)
				}
			}
		}
	}
}

// checkMountedFile fails unless path is a key of a ConfigMap or Secret
// mounted in the container.
func checkMountedFile(t *testing.T, s shipped, volumes map[string]corev1.Volume, mounts []corev1.VolumeMount, where, path string) {
	t.Helper()
	for _, vm := range mounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/")
		v, declared := volumes[vm.Name]
		if !ok || !declared {
			continue
		}
		switch {
		case v.ConfigMap != nil:
			checkConfigMapKey(t, s, where+" (mounted from "+vm.Name+")", v.ConfigMap.Name, rel)
		case v.Secret != nil:
			checkSecretKey(t, s, where+" (mounted from "+vm.Name+")", v.Secret.SecretName, rel)
		default:
			t.Errorf("%s is on volume %s, which is neither a ConfigMap nor a Secret", where, vm.Name)
		}
		return
	}
	t.Errorf("%s is on no mounted volume", where)
}

// checkDSNFiles: the certificate files a PostgreSQL URL names are mounted;
// the URL verifies the server (sslmode=verify-full).
func checkDSNFiles(t *testing.T, s shipped, volumes map[string]corev1.Volume, mounts []corev1.VolumeMount, where, dsn string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Errorf("%s: the example DATABASE_URL is not a URL: %v", where, err)
		return
	}
	q := u.Query()
	if q.Get("sslmode") != "verify-full" {
		t.Errorf("%s: DATABASE_URL sslmode=%q, want verify-full", where, q.Get("sslmode"))
	}
	for _, k := range []string{"sslrootcert", "sslcert", "sslkey"} {
		if p := q.Get(k); p != "" {
			checkMountedFile(t, s, volumes, mounts, where+" DATABASE_URL "+k+"="+p, p)
		}
	}
}

func atoi32(s string) int32 {
	n, _ := strconv.Atoi(s)
	return int32(n)
}

// checkConfigMapKey fails unless the shipped ConfigMap name has key; it
// returns the value.
func checkConfigMapKey(t *testing.T, s shipped, where, name, key string) string {
	t.Helper()
	cm := s.configMaps[name]
	if cm == nil {
		t.Errorf("%s refers to ConfigMap %s, not in deploy/k8s", where, name)
		return ""
	}
	v, ok := cm.Data[key]
	if _, bin := cm.BinaryData[key]; !ok && !bin {
		t.Errorf("%s refers to key %s, which ConfigMap %s does not have", where, key, name)
	}
	return v
}

// checkSecretKey fails unless the shipped Secret example name has key.
func checkSecretKey(t *testing.T, s shipped, where, name, key string) {
	t.Helper()
	sec := s.secrets[name]
	if sec == nil {
		t.Errorf("%s refers to Secret %s, not described in deploy/k8s", where, name)
		return
	}
	_, ok := sec.StringData[key]
	if _, bin := sec.Data[key]; !ok && !bin {
		t.Errorf("%s refers to key %s, which the example Secret %s does not have", where, key, name)
	}
}

// The Kubernetes mapping ConfigMap must carry exactly deploy/mapping.yaml.
func TestMappingConfigMapEqualsMapping(t *testing.T) {
	want, err := os.ReadFile("mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cm := readK8s(t).configMaps["cowjacket-mapping"]
	if cm == nil {
		t.Fatal("no ConfigMap cowjacket-mapping in deploy/k8s (ticketer mounts it)")
	}
	if cm.Data["mapping.yaml"] != string(want) {
		t.Error("deploy/k8s/mapping-configmap.yaml differs from deploy/mapping.yaml: regenerate it (see its header)")
	}
}
