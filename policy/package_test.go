package policy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// parsePackage parses the non-test Go files of dir.
func parsePackage(tb testing.TB, dir string) []*ast.File {
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
	if len(files) == 0 {
		tb.Fatalf("no Go files in %s", dir)
	}
	return files
}

// TestImports enforces the layering: policy imports no transport, driver or
// other domain package; policy/redis imports only policy among Quill packages.
func TestImports(t *testing.T) {
	forbidden := []string{"net/http", "github.com/jackc/pgx", "github.com/redis/go-redis", "github.com/hashicorp/vault",
		"github.com/quillpay/quill/"}
	for dir, allowed := range map[string][]string{".": nil, "redis": {"github.com/quillpay/quill/policy", "github.com/redis/go-redis/v9"}} {
		t.Run(dir, func(t *testing.T) {
			for _, f := range parsePackage(t, dir) {
				for _, imp := range f.Imports {
					path, _ := strconv.Unquote(imp.Path.Value)
					ok := true
					for _, bad := range forbidden {
						if path == bad || strings.HasPrefix(path, bad) {
							ok = false
						}
					}
					for _, a := range allowed {
						if path == a {
							ok = true
						}
					}
					if !ok {
						t.Errorf("%s imports %s", dir, path)
					}
				}
			}
		})
	}
}

// TestDocs checks the package doc and that every exported top-level
// identifier has a doc comment starting with its name.
func TestDocs(t *testing.T) {
	for _, dir := range []string{".", "redis"} {
		t.Run(dir, func(t *testing.T) {
			hasPkgDoc := false
			for _, f := range parsePackage(t, dir) {
				if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name+" ") {
					hasPkgDoc = true
				}
				for _, decl := range f.Decls {
					switch d := decl.(type) {
					case *ast.FuncDecl:
						if d.Name.IsExported() && (d.Recv == nil || receiverExported(d.Recv)) && d.Name.Name != "Error" && d.Name.Name != "Unwrap" {
							checkDoc(t, d.Name.Name, d.Doc)
						}
					case *ast.GenDecl:
						for _, s := range d.Specs {
							switch s := s.(type) {
							case *ast.TypeSpec:
								if s.Name.IsExported() {
									checkDoc(t, s.Name.Name, firstDoc(s.Doc, d.Doc))
								}
							case *ast.ValueSpec:
								for _, n := range s.Names {
									// Grouped constants and variables may share the group's doc.
									if n.IsExported() && s.Doc == nil && s.Comment == nil && d.Doc == nil {
										t.Errorf("%s has no doc comment", n.Name)
									}
								}
							}
						}
					}
				}
			}
			if !hasPkgDoc {
				t.Error("no package doc comment")
			}
		})
	}
}

func receiverExported(fl *ast.FieldList) bool {
	typ := fl.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	id, ok := typ.(*ast.Ident)
	return ok && id.IsExported()
}

func firstDoc(docs ...*ast.CommentGroup) *ast.CommentGroup {
	for _, d := range docs {
		if d != nil {
			return d
		}
	}
	return nil
}

func checkDoc(tb testing.TB, name string, doc *ast.CommentGroup) {
	tb.Helper()
	if doc == nil || !strings.HasPrefix(doc.Text(), name+" ") {
		tb.Errorf("%s: doc comment must start with %q", name, name)
	}
}
