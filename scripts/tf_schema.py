"""Terraform resources and data sources checked against the providers' real schemas, as ``terraform validate`` would.

No terraform binary (and so no ``terraform providers schema -json``) is available where this project is built,
but every provider schema is published on PyPI as prebuilt CDK bindings (``cdktn-provider-*``), generated from
that very JSON. This module reads the bindings' Python source with :mod:`ast` straight out of the wheel (never
importing it: that would start a Node runtime) and rebuilds, per resource type, what ``terraform validate``
checks: which arguments and blocks exist, which are required, which blocks may appear only once.

How the bindings encode the schema (cdktf's provider generator, forked as cdktn):

* module ``<pkg>/<base>/__init__.py`` per type; ``base`` is the type without its provider prefix, with ``_``
  inserted between a digit and a letter (``aws_s3control_bucket`` -> ``s3_control_bucket``), data sources are
  ``data_<type>`` (see :func:`module_name`). The module's first line names the type, which we verify.
* the config struct (``jsii_struct_bases=[...TerraformMetaArguments]``) and one struct per nested block or object
  attribute, each an ``__init__(self, *, ...)`` whose keyword-only parameters without a default are required.
* the Terraform name of a parameter is the fragment of its ``{@link https://registry.terraform.io/...#name ...}``
  in the docstring: Python names differ in ~150 places (``from_``, ``build_attribute``, ``fetchh_details`` for
  ``geth_details``, ``hugepage_size1_g`` for ``hugepage_size_1g``). Twelve parameters in these wheels lost their
  link to docstring conversion (``port_range``, ``name``, ``code``...); their Python name is the Terraform name.
* a nested *block* is always described as ``"<name> block."`` (the generator writes that text; attributes carry
  the provider's own description), which is how a block and an attribute of object type are told apart.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import keyword
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache" / "tf-providers"

# Bump when the extraction below changes, so stale JSON caches are rebuilt rather than trusted.
_CACHE_FORMAT = 1

Kind = Literal["resource", "data"]


@dataclass(frozen=True)
class Provider:
    """A provider's pinned prebuilt bindings, and the provider release they were generated from."""

    name: str
    package: str
    version: str
    source: str
    provider_version: str
    sha256: str

    @property
    def module(self) -> str:
        """The top-level Python package inside the wheel."""
        return self.package.replace("-", "_")

    @property
    def wheel(self) -> Path:
        """Where the wheel is kept once downloaded."""
        return CACHE_DIR / f"{self.module}-{self.version}-py3-none-any.whl"


# One place for the pins. Each binding release is generated from exactly one provider release (the first line of
# its README/METADATA says which); the Terraform under terraform/ should pin the same provider versions. The hashes
# make pip refuse any other file under the same name.
PROVIDERS: dict[str, Provider] = {
    "google": Provider(
        "google",
        "cdktn-provider-google",
        "21.1.0",
        "hashicorp/google",
        "8.7.0",
        "157dead5025d5db5abe48e40cc49f0b6a4d8088fd0498eb17ad5a36bca811b2a",
    ),
    "aws": Provider(
        "aws",
        "cdktn-provider-aws",
        "25.8.1",
        "hashicorp/aws",
        "6.69.1",
        "2ffa579cb88b063cb3a9937e43c519391e876845768f51638a848bdf2ce9f354",
    ),
    "archive": Provider(
        "archive",
        "cdktn-provider-archive",
        "14.0.1",
        "hashicorp/archive",
        "2.8.1",
        "b2cd6a0c8d443c83e7f11e4d6ef292978828b7402099261528358ba85db20eec",
    ),
}

# Meta-arguments Terraform itself handles on every resource / data source: never part of a provider schema.
META_ARGUMENTS = frozenset({"count", "for_each", "depends_on", "provider"})
META_BLOCKS: dict[Kind, frozenset[str]] = {
    "resource": frozenset({"lifecycle", "provisioner", "connection"}),
    "data": frozenset({"lifecycle"}),
}
# The Python-side names of the same meta-arguments in every config struct (they carry no registry link).
_BINDING_META = frozenset({"connection", "count", "depends_on", "for_each", "lifecycle", "provider", "provisioners"})
BLOCK_MARKER = "__is_block__"
# cdktf renames a resource whose name would clash in some target language (resource-parser.ts); no type of the
# pinned providers is affected, but a future pin could be.
_RESERVED_BASE_NAMES = frozenset(
    {"string", "object", "function", "implements", "interface", "let", "package", "private", "protected", "public"}
    | {"static", "yield", "await", "license", "version", "provider"}
)
_REGISTRY_LINK = re.compile(r"\{@link https://registry\.terraform\.io/providers/\S+?#(\S+) [^}]*\}")
_PARAM = re.compile(r"^:param (\w+): (.*?)(?=^:param |\Z)", re.DOTALL | re.MULTILINE)
_HEADER = re.compile(r"\A(?:r?''')?\s*# `([^`]+)`")


class SchemaUnavailable(RuntimeError):
    """The provider bindings could not be obtained (no network to PyPI and nothing cached)."""


@dataclass(eq=False)
class NestedBlock:
    """A block type inside a resource or another block."""

    block: Block
    required: bool = False
    # The bindings type a block that may appear at most once (list/set with max_items 1, or nesting "single")
    # as one struct rather than a sequence of them.
    single: bool = False


@dataclass(eq=False)
class ObjectArgument:
    """The shape of an argument whose value is an object, a list/set of objects or a map of objects."""

    block: Block
    nesting: Literal["single", "list", "map"]


@dataclass(eq=False)
class Block:
    """One level of a schema: a resource's or data source's top level, or a nested block type.

    ``arguments`` maps every argument (attribute) name to whether it is required; ``blocks`` maps every nested
    block type to its schema. ``objects`` gives, for the arguments among ``arguments`` whose value is an object
    (or list/map of objects), the object's attributes. ``open`` marks a block the bindings do not describe
    (cdktf types a few huge recursive blocks, e.g. ``aws_wafv2_web_acl``'s ``statement``, as ``Any``):
    anything is accepted inside it. Blocks can be recursive, so the structure may contain cycles.
    """

    arguments: dict[str, bool] = field(default_factory=dict)
    blocks: dict[str, NestedBlock] = field(default_factory=dict)
    objects: dict[str, ObjectArgument] = field(default_factory=dict)
    open: bool = False

    def __repr__(self) -> str:
        # The default repr would recurse forever on a recursive schema.
        return f"Block(arguments={self.arguments!r}, blocks={sorted(self.blocks)!r}, open={self.open!r})"


# --- reading the bindings --------------------------------------------------------------------------------------


def provider_for(resource_type: str) -> Provider | None:
    """The pinned provider serving ``resource_type`` (by its prefix), or None for providers without bindings."""
    return PROVIDERS.get(resource_type.split("_", 1)[0]) if "_" in resource_type else None


def module_name(resource_type: str, kind: Kind) -> str:
    """The bindings' submodule for a type: ``google_cloudfunctions2_function`` -> ``cloudfunctions2_function``.

    cdktf drops the provider prefix (keeping ``data_`` plus the full type for data sources), then the name goes
    through camelCase and back to snake_case, which puts an ``_`` between a digit and a following letter
    (``aws_lexv2models_bot`` -> ``lexv2_models_bot``; ``cloudfunctions2_function`` already has one).
    """
    provider = provider_for(resource_type)
    base = resource_type
    if kind == "data":
        base = f"data_{resource_type}"
    elif provider is not None and resource_type.startswith(f"{provider.name}_"):
        base = resource_type[len(provider.name) + 1 :]
        if base in _RESERVED_BASE_NAMES:
            base += "_resource"
    return re.sub(r"(\d)([a-z])", r"\1_\2", base)


def ensure_wheel(provider: Provider) -> Path:
    """The provider's wheel, downloaded from PyPI into :data:`CACHE_DIR` on first use."""
    if provider.wheel.exists():
        return provider.wheel
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Download next to the cache and move into place, so an interrupted download never looks complete.
    with tempfile.TemporaryDirectory(dir=CACHE_DIR, prefix=".download-") as staging:
        requirement = Path(staging) / "requirement.txt"
        requirement.write_text(f"{provider.package}=={provider.version} --hash=sha256:{provider.sha256}\n")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes"]
        command += ["--disable-pip-version-check", "--quiet", "-r", str(requirement), "-d", staging]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wheels = list(Path(staging).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise SchemaUnavailable(
                f"cannot download {provider.package}=={provider.version}: {result.stderr.strip()[-2000:]}"
            )
        os.replace(wheels[0], provider.wheel)
    return provider.wheel


class _Bindings:
    """One provider's wheel, read lazily, with the extracted schemas cached in memory and as JSON on disk."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._zip: zipfile.ZipFile | None = None
        self._names: set[str] | None = None
        self.cache_file = CACHE_DIR / f"{provider.module}-{provider.version}.schemas.json"
        self._extracts: dict[str, dict[str, Any] | None] = self._read_cache()
        self._dirty = False
        self._blocks: dict[str, Block | None] = {}

    def _read_cache(self) -> dict[str, dict[str, Any] | None]:
        try:
            cached = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            return {}
        if cached.get("format") != _CACHE_FORMAT or cached.get("package") != self.provider.package:
            return {}
        if cached.get("version") != self.provider.version:
            return {}
        extracts: dict[str, dict[str, Any] | None] = cached.get("types", {})
        return extracts

    def save(self) -> None:
        """Write newly extracted schemas to the JSON cache (atomically: concurrent runs never see half a file)."""
        if not self._dirty:
            return
        payload = {
            "format": _CACHE_FORMAT,
            "package": self.provider.package,
            "version": self.provider.version,
            "types": self._extracts,
        }
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=CACHE_DIR, suffix=".tmp", delete=False) as handle:
            json.dump(payload, handle, sort_keys=True)
        os.chmod(handle.name, 0o644)  # NamedTemporaryFile makes it private; the cache is as shareable as the wheels
        os.replace(handle.name, self.cache_file)
        self._dirty = False

    @property
    def zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(ensure_wheel(self.provider))
        return self._zip

    def modules(self) -> set[str]:
        """Every submodule name in the wheel."""
        if self._names is None:
            prefix = f"{self.provider.module}/"
            self._names = {
                name[len(prefix) : -len("/__init__.py")]
                for name in self.zip.namelist()
                if name.startswith(prefix) and name.endswith("/__init__.py") and name.count("/") == 2
            }
        return self._names

    def source(self, module: str) -> str | None:
        """A submodule's source, or None if the wheel has no such module."""
        if module not in self.modules():
            return None
        return self.zip.read(f"{self.provider.module}/{module}/__init__.py").decode()

    def block(self, resource_type: str, kind: Kind) -> Block | None:
        key = f"{kind}:{resource_type}"
        if key not in self._blocks:
            if key not in self._extracts:
                self._extracts[key] = self._extract(resource_type, kind)
                self._dirty = True
            extract = self._extracts[key]
            self._blocks[key] = None if extract is None else _build(extract)
        return self._blocks[key]

    def _extract(self, resource_type: str, kind: Kind) -> dict[str, Any] | None:
        source = self.source(module_name(resource_type, kind))
        if source is None:
            return None
        header = _HEADER.match(source)
        expected = f"data_{resource_type}" if kind == "data" else resource_type
        if header is None or header.group(1) != expected:
            # A module that is not this type's (``provider_functions``, or another type whose name folds onto the
            # same module name): no such type. The tests check the rule against every module of the pinned wheels.
            return None
        return extract_schema(source)

    def suggest(self, resource_type: str, kind: Kind) -> str | None:
        """The closest existing type of the same kind, for an unknown one."""
        wanted = module_name(resource_type, kind)
        data_prefix = f"data_{self.provider.name}_"
        candidates = [
            name
            for name in self.modules()
            if name.startswith(data_prefix) == (kind == "data") and not name.startswith(("ephemeral_", "_"))
        ]
        for candidate in difflib.get_close_matches(wanted, candidates, n=1, cutoff=0.8):
            header = _HEADER.match(self.source(candidate) or "")
            if header:
                return header.group(1).removeprefix("data_") if kind == "data" else header.group(1)
        return None


_BINDINGS: dict[str, _Bindings] = {}


def _bindings(provider: Provider) -> _Bindings:
    if provider.name not in _BINDINGS:
        _BINDINGS[provider.name] = _Bindings(provider)
    return _BINDINGS[provider.name]


def load_schema(resource_type: str, kind: Kind) -> Block | None:
    """The schema of a resource type (``kind="resource"``) or data source (``kind="data"``).

    None if the provider has no such type. Raises :class:`SchemaUnavailable` if the type's provider has no
    pinned bindings, or they cannot be downloaded.
    """
    provider = provider_for(resource_type)
    if provider is None:
        raise SchemaUnavailable(f"no pinned provider bindings for {resource_type!r}")
    bindings = _bindings(provider)
    try:
        return bindings.block(resource_type, kind)
    finally:
        bindings.save()


def _struct_chunks(source: str) -> Iterator[str]:
    """The source of each ``@jsii.data_type`` class, cut out of the module.

    Parsing only these is several times faster than parsing the whole module (a big one, e.g.
    ``container_cluster``, is 3 MB, mostly getters and ``OutputReference`` classes we do not need).
    """
    next_statement = re.compile(r"^(?=\S)", re.MULTILINE)
    for match in re.finditer(r"^@jsii\.data_type\(", source, re.MULTILINE):
        class_line = source.index("\nclass ", match.start())
        end = next_statement.search(source, class_line + 2)
        yield source[match.start() : end.start() if end else len(source)]


def _struct_classes(source: str) -> list[ast.ClassDef]:
    try:
        trees = [ast.parse(chunk) for chunk in _struct_chunks(source)]
    except SyntaxError:
        # A class body with a line at column 0 (e.g. inside a string) defeats the cut; fall back to the module.
        trees = [ast.parse(source)]
    return [
        node
        for tree in trees
        for node in tree.body
        if isinstance(node, ast.ClassDef) and any(_is_data_type(decorator) for decorator in node.decorator_list)
    ]


def _is_data_type(decorator: ast.expr) -> bool:
    return isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "jsii.data_type"


def _is_config(node: ast.ClassDef) -> bool:
    # Not by name: when ``<Name>Config`` is taken by a nested struct, cdktf appends "A" (``...ConfigAConfig``).
    return any(ast.unparse(base).endswith(".TerraformMetaArguments") for base in node.bases)


def extract_schema(source: str) -> dict[str, Any]:
    """A bindings module's schema as plain data (what the JSON cache holds).

    ``{"root": config class, "structs": {class: {terraform name: [kind, required, class or None, nesting]}}}``
    where kind is ``argument``, ``block``, ``object`` (an argument whose value is shaped by a struct) or
    ``open`` (a block the bindings type as ``Any``) and nesting is ``single``, ``list`` or ``map``.
    """
    classes = _struct_classes(source)
    names = {node.name for node in classes}
    roots = [node.name for node in classes if _is_config(node)]
    if len(roots) != 1:
        raise ValueError(f"expected one config struct, found {roots}")
    structs = {node.name: _struct_fields(node, names, is_root=node.name == roots[0]) for node in classes}
    return {"root": roots[0], "structs": structs}


def _struct_fields(node: ast.ClassDef, struct_names: set[str], *, is_root: bool) -> dict[str, list[Any]]:
    init = next((item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
    if init is None:
        return {}
    params = {match.group(1): match.group(2) for match in _PARAM.finditer(ast.get_docstring(init) or "")}
    fields: dict[str, list[Any]] = {}
    for arg, default in zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True):
        description = params.get(arg.arg, "")
        links = _REGISTRY_LINK.findall(description)
        if is_root and arg.arg in _BINDING_META and not links:
            continue
        name = links[-1] if links else _python_to_terraform(arg.arg)
        struct, nesting = _struct_reference(arg.annotation, struct_names)
        is_block = description.startswith((f"{name} block.", f"{name} block "))
        if struct is not None:
            kind = "block" if is_block else "object"
        elif is_block:
            kind = "open"
        else:
            kind = "argument"
        fields[name] = [kind, default is None, struct, nesting]
    return fields


def _python_to_terraform(name: str) -> str:
    # Only for the few parameters whose docstring lost its registry link; all of them are plain names.
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def _struct_reference(annotation: ast.expr | None, struct_names: set[str]) -> tuple[str | None, str]:
    """The struct a parameter's type refers to, and how: ``"X"`` single, ``Sequence["X"]`` list, map."""
    if annotation is None:
        return None, "single"

    def walk(node: ast.AST, nesting: str) -> tuple[str | None, str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in struct_names:
            return node.value, nesting
        if isinstance(node, ast.Subscript):
            outer = ast.unparse(node.value).rsplit(".", 1)[-1]
            # ``Dict[str, Any]`` only ever follows the struct itself (``Union["X", Dict[str, Any]]``), never wraps it.
            if outer == "Sequence":
                nesting = "list"
            elif outer == "Mapping":
                nesting = "map"
            return walk(node.slice, nesting)
        if isinstance(node, ast.Tuple):
            for element in node.elts:
                found = walk(element, nesting)
                if found[0] is not None:
                    return found
        return None, nesting

    return walk(annotation, "single")


def _build(extract: Mapping[str, Any]) -> Block:
    structs: Mapping[str, Mapping[str, list[Any]]] = extract["structs"]
    built: dict[str, Block] = {}

    def block_of(name: str) -> Block:
        if name in built:
            return built[name]
        block = built[name] = Block()  # registered before filling: the schema may refer back to it
        for field_name, (kind, required, struct, nesting) in structs[name].items():
            if kind == "block":
                block.blocks[field_name] = NestedBlock(block_of(struct), required, single=nesting == "single")
            elif kind == "open":
                block.blocks[field_name] = NestedBlock(Block(open=True), required)
            else:
                block.arguments[field_name] = required
                if kind == "object":
                    block.objects[field_name] = ObjectArgument(block_of(struct), nesting)
        return block

    return block_of(extract["root"])


# --- checking documents ----------------------------------------------------------------------------------------


def _is_parser_key(key: str) -> bool:
    # python-hcl2's own annotations (__is_block__, __comments__, __start_line__...): never a Terraform name.
    return key.startswith("__") and key.endswith("__")


def _is_block_list(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get(BLOCK_MARKER) is True for item in value)
    )


def _is_labeled_block_list(value: Any) -> bool:
    # python-hcl2 nests a labeled block one level down: ``x "label" {}`` is ``[{"label": {..., marker}}]``.
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and _labeled_body(item) is not None for item in value)
    )


def _labeled_body(item: Mapping[str, Any]) -> Any:
    labels = [key for key in item if not _is_parser_key(key)]
    body = item[labels[0]] if len(labels) == 1 else None
    return body if isinstance(body, dict) and body.get(BLOCK_MARKER) is True else None


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.65)
    return f' (did you mean "{close[0]}"?)' if close else ""


@dataclass
class _Checker:
    where: str
    findings: list[str]

    def report(self, path: str, message: str) -> None:
        self.findings.append(f"{self.where}: {path + ': ' if path else ''}{message}")

    def body(
        self, body: Mapping[str, Any], schema: Block, path: str, meta_blocks: frozenset[str] = frozenset()
    ) -> None:
        """Check one block body against its schema (``meta_blocks`` non-empty only at a resource's top level)."""
        if schema.open:
            return
        present: set[str] = set()
        static_blocks: dict[str, int] = {}
        for key, value in body.items():
            if _is_parser_key(key):
                continue
            if meta_blocks and (key in META_ARGUMENTS or key in meta_blocks):
                continue
            if key == "dynamic" and isinstance(value, list):
                # HCL reserves the name: no schema has an argument or block called "dynamic".
                present.update(self.dynamic(value, schema, path))
                continue
            present.add(key)
            if _is_labeled_block_list(value):
                # Only provisioners take a label at this level; the provider's block types never do.
                if self.block_schema(key, schema, path) is not None:
                    self.report(path, f'"{key}" blocks take no labels')
            elif _is_block_list(value):
                static_blocks[key] = len(value)
                self.block_use(key, value, schema, path)
            else:
                self.argument_use(key, value, schema, path)
        for name, required in schema.arguments.items():
            if required and name not in present:
                self.report(path, f'missing required argument "{name}"')
        for name, nested in schema.blocks.items():
            if nested.required and name not in present:
                self.report(path, f'missing required block "{name}"')
            if nested.single and static_blocks.get(name, 0) > 1:
                self.report(path, f'too many "{name}" blocks (at most one is allowed)')

    def block_use(self, key: str, entries: list[dict[str, Any]], schema: Block, path: str) -> None:
        nested = self.block_schema(key, schema, path)
        if nested is None:
            return
        for index, entry in enumerate(entries):
            label = f"{key}[{index}]" if len(entries) > 1 else key
            self.body(entry, nested, f"{path}.{label}" if path else label)

    def block_schema(self, key: str, schema: Block, path: str) -> Block | None:
        """The schema for blocks named ``key`` here, reporting it if there cannot be any."""
        if key in schema.blocks:
            return schema.blocks[key].block
        obj = schema.objects.get(key)
        if obj is not None and obj.nesting == "list":
            # An argument of type list/set of objects. Terraform accepts block syntax for it too when its type is
            # a plain list(object) ("attributes as blocks": aws_security_group's ingress, and framework
            # ListAttributes of objects), but not for a framework ListNestedAttribute; the bindings render both
            # the same way, so both syntaxes pass rather than risk a false finding.
            return obj.block
        if key in schema.arguments:
            self.report(path, f'unsupported block "{key}" (it is an argument: {key} = ...)')
        else:
            self.report(path, f'unsupported block "{key}"{_hint(key, [*schema.blocks, *schema.objects])}')
        return None

    def argument_use(self, key: str, value: Any, schema: Block, path: str) -> None:
        if key in schema.arguments:
            obj = schema.objects.get(key)
            if obj is not None:
                self.object_value(key, value, obj, path)
        elif key in schema.blocks:
            self.report(path, f'unsupported argument "{key}" (it is a block: {key} {{ ... }})')
        else:
            self.report(path, f'unsupported argument "{key}"{_hint(key, schema.arguments)}')

    def object_value(self, key: str, value: Any, obj: ObjectArgument, path: str) -> None:
        """Check the attribute names of literal objects given to an object-typed argument (expressions pass)."""
        if obj.nesting == "map":
            items = list(value.values()) if isinstance(value, dict) else []
        elif obj.nesting == "list":
            items = value if isinstance(value, list) else []
        else:
            items = [value]
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            label = key if obj.nesting == "single" else f"{key}[{index}]"
            inner = f"{path}.{label}" if path else label
            for name in item:
                if _is_parser_key(name):
                    continue
                if name not in obj.block.arguments and name not in obj.block.blocks:
                    self.report(inner, f'unsupported attribute "{name}"{_hint(name, obj.block.arguments)}')
            for name, required in obj.block.arguments.items():
                if required and name not in item:
                    self.report(inner, f'missing required attribute "{name}"')

    def dynamic(self, entries: list[Any], schema: Block, path: str) -> set[str]:
        """Check ``dynamic "x" { for_each, iterator, labels, content { ... } }``; returns the block names."""
        names: set[str] = set()
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            for label, body in entry.items():
                if _is_parser_key(label):
                    continue
                names.add(label)
                here = f'{path + "." if path else ""}dynamic "{label}"'
                nested = self.block_schema(label, schema, path)
                if not isinstance(body, dict):
                    continue
                for key in body:
                    if not _is_parser_key(key) and key not in ("for_each", "iterator", "labels", "content"):
                        self.report(here, f'unsupported argument "{key}"')
                if "for_each" not in body:
                    self.report(here, 'missing required argument "for_each"')
                contents = body.get("content")
                if not _is_block_list(contents):
                    self.report(here, 'missing required block "content"')
                elif nested is not None:
                    for content in contents:
                        self.body(content, nested, f"{here}.content")
        return names


def _labeled(document: Mapping[str, Any], kind: str) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """``(type, name, body)`` for every ``resource``/``data`` block of a normalized document."""
    for entry in document.get(kind) or []:
        if not isinstance(entry, dict):
            continue
        for resource_type, instances in entry.items():
            if _is_parser_key(resource_type) or not isinstance(instances, dict):
                continue
            for name, body in instances.items():
                if not _is_parser_key(name) and isinstance(body, dict):
                    yield resource_type, name, body


def _uses_google_beta(body: Mapping[str, Any]) -> bool:
    return isinstance(body.get("provider"), str) and "google-beta" in body["provider"]


@dataclass
class Report:
    """What :func:`check` found, and what it could not check."""

    findings: list[str] = field(default_factory=list)
    checked: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def check(documents: Mapping[str, Mapping[str, Any]]) -> Report:
    """Like :func:`validate`, also counting what was checked and which types were skipped (no bindings)."""
    report = Report()
    try:
        for path in sorted(documents):
            for kind in ("resource", "data"):
                for resource_type, name, body in _labeled(documents[path], kind):
                    provider = provider_for(resource_type)
                    if provider is None or _uses_google_beta(body):
                        # No pinned bindings (null, random, time, terraform_data, google-beta...): not checked.
                        skipped = f"{kind} {resource_type}"
                        report.skipped[skipped] = report.skipped.get(skipped, 0) + 1
                        continue
                    report.checked += 1
                    where = f"{path}: {kind} {resource_type}.{name}"
                    schema = _bindings(provider).block(resource_type, kind)
                    if schema is None:
                        what = "resource type" if kind == "resource" else "data source"
                        hint = _bindings(provider).suggest(resource_type, kind)
                        suffix = f' (did you mean "{hint}"?)' if hint else ""
                        report.findings.append(f'{where}: unknown {what} "{resource_type}"{suffix}')
                        continue
                    _Checker(where, report.findings).body(body, schema, "", META_BLOCKS[kind])
    finally:
        for bindings in _BINDINGS.values():
            bindings.save()
    return report


def validate(documents: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Check every resource and data source in ``documents`` (file path -> normalized python-hcl2 document).

    Returns findings such as ``terraform/x/main.tf: resource aws_lambda_function.this: unsupported argument
    "memory"``, ``...: missing required argument "role"``, ``...: build_config.source: unsupported block "foo"``
    or ``...: unknown resource type "aws_lamda_function"``. Types of providers without pinned bindings are
    skipped (see :func:`check`). Raises :class:`SchemaUnavailable` if the bindings cannot be downloaded.
    """
    return check(documents).findings


def main(argv: list[str] | None = None) -> int:
    """``python -m scripts.tf_schema DOCS.json``: print the findings for a JSON of {path: document}; exit 1 if any."""
    parser = argparse.ArgumentParser(prog="python -m scripts.tf_schema", description=__doc__.split("\n\n")[0])
    parser.add_argument("documents", type=Path, help="JSON object mapping each .tf path to its normalized document")
    args = parser.parse_args(argv)
    try:
        documents = json.loads(args.documents.read_text())
        report = check(documents)
    except (OSError, ValueError) as exc:
        print(f"tf_schema: cannot read {args.documents}: {exc}", file=sys.stderr)
        return 2
    except SchemaUnavailable as exc:
        print(f"tf_schema: {exc}", file=sys.stderr)
        return 2
    for finding in report.findings:
        print(finding)
    skipped = ", ".join(sorted(report.skipped))
    print(
        f"tf_schema: {report.checked} checked, {len(report.findings)} findings"
        + (f"; not checked (no pinned bindings): {skipped}" if skipped else ""),
        file=sys.stderr,
    )
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
