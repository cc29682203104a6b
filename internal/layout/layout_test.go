package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/quillpay/quill/"

// domains own the rules; they import no other domain, no api, no transport and
// no driver.
var domains = []string{"signing", "policy", "ledger", "keys", "certs", "audit", "merchant"}

// leaves are domain packages every other domain may import: nouns all of them
// share (the merchant id and its one parser). A leaf imports no project
// package at all, so allowing it cannot create a cycle or smuggle another
// domain's rules in. Keep this list short: a second entry needs a reason as
// good as "the id syntax was defined four different ways".
var leaves = map[string]bool{module + "merchant": true}

// adapters pull exactly one driver and import exactly one domain package.
var adapters = map[string]string{
	"ledger/postgres":   "ledger",
	"signing/redis":     "signing",
	"signing/openssl":   "signing",
	"policy/redis":      "policy",
	"keys/vault":        "keys",
	"merchant/postgres": "merchant",
}

// forbiddenInDomains are imports a domain package must not have.
var forbiddenInDomains = []string{
	"net/http", "github.com/jackc/", "github.com/redis/", "github.com/hashicorp/",
	"github.com/go-chi/", "github.com/rs/zerolog", "github.com/prometheus/",
}

// sharedInternal are project packages every package may use: small and free of
// domain rules.
var sharedInternal = map[string]bool{module + "internal/atomicfile": true, module + "internal/reload": true}

func root(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		tb.Fatalf("repository root not found from %s", dir)
	}
	return dir
}

// parseDir parses the non-test Go files of one package directory.
func parseDir(tb testing.TB, dir string) []*ast.File {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		tb.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ParseComments)
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

func imports(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	for _, f := range parseDir(tb, dir) {
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out = append(out, p)
		}
	}
	if len(out) == 0 && len(parseDir(tb, dir)) == 0 {
		tb.Fatalf("no Go files in %s", dir)
	}
	return out
}

func TestDomainImports(t *testing.T) {
	r := root(t)
	for _, d := range domains {
		t.Run(d, func(t *testing.T) {
			for _, p := range imports(t, filepath.Join(r, d)) {
				if strings.HasPrefix(p, module) && !sharedInternal[p] && (!leaves[p] || leaves[module+d]) {
					t.Errorf("%s imports %s: domain packages import no other project package but a leaf (and leaves none)", d, p)
				}
				for _, bad := range forbiddenInDomains {
					if strings.HasPrefix(p, bad) {
						t.Errorf("%s imports %s", d, p)
					}
				}
			}
		})
	}
}

func TestAdapterImports(t *testing.T) {
	r := root(t)
	for dir, domain := range adapters {
		t.Run(dir, func(t *testing.T) {
			var own []string
			for _, p := range imports(t, filepath.Join(r, dir)) {
				if strings.HasPrefix(p, module) && !sharedInternal[p] && !(leaves[p] && module+domain != p) {
					own = append(own, p)
				}
				if p == "net/http" {
					t.Errorf("%s imports net/http", dir)
				}
			}
			seen := map[string]bool{}
			for _, p := range own {
				seen[p] = true
			}
			if len(seen) != 1 || !seen[module+domain] {
				t.Errorf("%s imports project packages %v; want exactly %s", dir, own, module+domain)
			}
		})
	}
}

// TestOnlyMetricsImportsPrometheus keeps the Prometheus client in its one
// adapter: api, the domains and their adapters expose hooks instead.
func TestOnlyMetricsImportsPrometheus(t *testing.T) {
	r := root(t)
	checked := 0
	filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		switch d.Name() {
		case "testdata", "node_modules", "var", ".git", "bin", "tools":
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(r, path)
		if len(parseDir(t, path)) == 0 || rel == filepath.Join("internal", "metrics") {
			return nil
		}
		checked++
		for _, p := range imports(t, path) {
			if strings.HasPrefix(p, "github.com/prometheus/") {
				t.Errorf("%s imports %s: only internal/metrics may", rel, p)
			}
		}
		return nil
	})
	if checked < 10 {
		t.Fatalf("only %d packages checked", checked)
	}
}

// TestDocs checks every package under the root (but testdata, node_modules and
// var) has a package doc, and every exported top-level identifier a doc comment
// that starts with its name.
func TestDocs(t *testing.T) {
	r := root(t)
	var dirs []string
	filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", "var", ".git", "bin":
				return filepath.SkipDir
			}
			dirs = append(dirs, path)
		}
		return nil
	})
	checked := 0
	for _, dir := range dirs {
		files := parseDir(t, dir)
		if len(files) == 0 {
			continue
		}
		checked++
		rel, _ := filepath.Rel(r, dir)
		hasDoc := false
		for _, f := range files {
			if f.Doc != nil && (strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name+" ") || strings.HasPrefix(f.Doc.Text(), "Command ")) {
				hasDoc = true
			}
			for _, name := range undocumented(f) {
				t.Errorf("%s: exported %s has no doc comment starting with its name", rel, name)
			}
		}
		if !hasDoc {
			t.Errorf("%s: no package doc", rel)
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked", checked)
	}
}

// undocumented lists exported top-level names of f without a doc comment that
// starts with the name. Methods that implement well-known interfaces (Error,
// Unwrap, String, Format, GoString) explain themselves.
func undocumented(f *ast.File) []string {
	var out []string
	starts := func(doc *ast.CommentGroup, name string) bool {
		return doc != nil && (strings.HasPrefix(doc.Text(), name+" ") || strings.HasPrefix(doc.Text(), "A "+name+" ") || strings.HasPrefix(doc.Text(), "An "+name+" "))
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			switch d.Name.Name {
			case "Error", "Unwrap", "String", "Format", "GoString":
				continue
			}
			if d.Recv != nil && !exportedRecv(d.Recv) {
				continue
			}
			if !starts(d.Doc, d.Name.Name) {
				out = append(out, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && !starts(s.Doc, s.Name.Name) && !(len(d.Specs) == 1 && starts(d.Doc, s.Name.Name)) {
						out = append(out, s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						// A documented group (const/var block with a doc) covers its members.
						if n.IsExported() && s.Doc == nil && s.Comment == nil && d.Doc == nil {
							out = append(out, n.Name)
						}
					}
				}
			}
		}
	}
	return out
}

func exportedRecv(fl *ast.FieldList) bool {
	if len(fl.List) == 0 {
		return false
	}
	t := fl.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	id, ok := t.(*ast.Ident)
	return ok && id.IsExported()
}
