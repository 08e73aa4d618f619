package deploy_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// natsChartValues is the part of the official NATS chart's values
// (nats-io/k8s helm/charts/nats/values.yaml, chart 2.14.2) that
// deploy/nats/helm-values.yaml sets. Decoding is strict: a key that is not
// here is a typo, or one to add after checking it in the chart's values.
// podTemplate.merge is merged into the StatefulSet's pod template, so it is
// a PodTemplateSpec.
type natsChartValues struct {
	TLSCA struct {
		Enabled    bool   `json:"enabled"`
		SecretName string `json:"secretName"`
	} `json:"tlsCA"`
	Config struct {
		Cluster struct {
			Enabled   bool `json:"enabled"`
			Replicas  int  `json:"replicas"`
			RouteURLs struct {
				UseFQDN bool `json:"useFQDN"`
			} `json:"routeURLs"`
			TLS chartTLS `json:"tls"`
		} `json:"cluster"`
		Nats struct {
			TLS chartTLS `json:"tls"`
		} `json:"nats"`
		// Merge is merged into nats.conf; "<< $X >>" strings become $X.
		Merge struct {
			Authorization struct {
				Users []chartUser `json:"users"`
			} `json:"authorization"`
		} `json:"merge"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool   `json:"enabled"`
				Dir     string `json:"dir,omitempty"`
				PVC     struct {
					Enabled          bool    `json:"enabled"`
					Size             string  `json:"size"`
					StorageClassName *string `json:"storageClassName,omitempty"`
				} `json:"pvc"`
				MaxSize string `json:"maxSize,omitempty"`
			} `json:"fileStore"`
		} `json:"jetstream"`
		Monitor struct {
			Enabled bool `json:"enabled"`
			Port    int  `json:"port,omitempty"`
		} `json:"monitor"`
	} `json:"config"`
	Container struct {
		Env map[string]corev1.EnvVar `json:"env"`
	} `json:"container"`
	NatsBox struct {
		Enabled bool `json:"enabled"`
	} `json:"natsBox"`
	PodTemplate struct {
		// topologyKey → constraint, as the chart takes it.
		TopologySpreadConstraints map[string]corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
		Merge                     *corev1.PodTemplateSpec                    `json:"merge,omitempty"`
	} `json:"podTemplate"`
}

// chartTLS is the chart's tls block of a port (config.nats.tls, …).
type chartTLS struct {
	Enabled    bool           `json:"enabled"`
	SecretName string         `json:"secretName"`
	Merge      map[string]any `json:"merge,omitempty"`
}

// chartUser is a user of config.merge.authorization, as nats.conf has it.
type chartUser struct {
	User        string `json:"user"`
	Password    string `json:"password"`
	Permissions struct {
		Publish struct {
			Allow []string `json:"allow"`
			Deny  []string `json:"deny,omitempty"`
		} `json:"publish"`
		Subscribe struct {
			Allow []string `json:"allow"`
		} `json:"subscribe"`
	} `json:"permissions"`
}

// natsInstall is the README's `helm install` line: release, chart version,
// namespace.
var natsInstall = regexp.MustCompile(`helm install (\S+) nats/nats --version (\S+) -n (\S+) `)

// TestNATSHelmValues: the values decode strictly into the chart's structure,
// run a 3-node JetStream cluster, and forbid two servers on one node (a
// required pod anti-affinity on kubernetes.io/hostname that selects the
// chart's server pods), so losing a node never loses the quorum; the chart
// version they were written for is pinned in the file and in the README's
// install line, whose release and namespace are the ones NATS_URL names.
func TestNATSHelmValues(t *testing.T) {
	file := filepath.Join("nats", "helm-values.yaml")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v natsChartValues
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 || !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled {
		t.Errorf("%s: want a 3-node cluster with file-backed JetStream on PVCs: %+v", file, c)
	}
	// nats-server checks a route's certificate against the route URL's
	// host: the chart's short names match no name of the documented
	// certificate (*.nats-headless.nats.svc.cluster.local).
	if c.Cluster.TLS.Enabled && !c.Cluster.RouteURLs.UseFQDN {
		t.Errorf("%s: route TLS with the chart's short route names: set config.cluster.routeURLs.useFQDN", file)
	}

	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	inReadme, inValues := natsInstall.FindStringSubmatch(string(readme)), natsInstall.FindStringSubmatch(string(b))
	if inReadme == nil || inValues == nil {
		t.Fatalf("README.md and %s must both show `helm install RELEASE nats/nats --version X -n NAMESPACE …` (README: %v, values: %v)", file, inReadme, inValues)
	}
	if inReadme[1] != inValues[1] || inReadme[2] != inValues[2] || inReadme[3] != inValues[3] {
		t.Errorf("README.md installs %v, %s %v", inReadme[1:], file, inValues[1:])
	}
	release, version, namespace := inValues[1], inValues[2], inValues[3]
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(version) {
		t.Errorf("chart version %q is not pinned to a release", version)
	}

	// The server pods' labels: the chart's nats.selectorLabels.
	servers := labels.Set{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": release, "app.kubernetes.io/component": "nats"}
	box := labels.Set{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": release, "app.kubernetes.io/component": "nats-box"}
	var aff *corev1.Affinity
	if m := v.PodTemplate.Merge; m != nil {
		aff = m.Spec.Affinity
	}
	if aff == nil || aff.PodAntiAffinity == nil {
		t.Fatalf("%s: no podTemplate.merge.spec.affinity.podAntiAffinity", file)
	}
	ok := false
	for _, term := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if err != nil {
			t.Errorf("%s: anti-affinity selector: %v", file, err)
			continue
		}
		if term.TopologyKey == corev1.LabelHostname && sel.Matches(servers) && !sel.Matches(box) && len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
			ok = true
		}
	}
	if !ok {
		t.Errorf("%s: no required pod anti-affinity on %s selecting the servers %v (release %s)", file, corev1.LabelHostname, servers, release)
	}

	// NATS_URL: the chart's client Service, nats.fullname (the release name
	// when it contains "nats"), in the namespace.
	s := readK8s(t)
	cm := s.configMaps["cowjacket-config"]
	if cm == nil {
		t.Fatal("no ConfigMap cowjacket-config")
	}
	u, err := url.Parse(cm.Data["NATS_URL"])
	if err != nil {
		t.Fatalf("NATS_URL: %v", err)
	}
	service := release
	if !strings.Contains(release, "nats") {
		service = release + "-nats"
	}
	if want := service + "." + namespace + ".svc"; u.Hostname() != want && !strings.HasPrefix(u.Hostname(), want+".") {
		t.Errorf("NATS_URL %s: the chart installed as %s in %s serves %s", u, release, namespace, want)
	}
}

// The strict decoding must catch a misspelt key and a wrong type in the
// affinity.
func TestNATSHelmValuesDecodingIsStrict(t *testing.T) {
	for _, bad := range []string{
		"config: {clustr: {enabled: true}}\n",
		"podTemplate: {merge: {spec: {affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{topologyKey: kubernetes.io/hostname, labelSelector: {matchLabel: {a: b}}}]}}}}}\n",
		"podTemplate: {merge: {spec: {affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {topologyKey: kubernetes.io/hostname}}}}}}\n",
	} {
		var v natsChartValues
		if err := yaml.UnmarshalStrict([]byte(bad), &v); err == nil {
			t.Errorf("decoded without error: %s", bad)
		}
	}
}
