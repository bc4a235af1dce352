locals {
  # The repository checkout whose code is deployed: by default the one this module is part of.
  source_root = coalesce(var.source_root, abspath("${path.module}/../../.."))

  # Cloud Run functions' Python runtime imports main.py at the source root and looks the entry point up in it.
  main_py = "from gcf_trigger.main import trigger_dag, trigger_http  # noqa: F401\n"

  # The source is unpacked in /workspace on Cloud Run functions; the config file is packaged at its root.
  config_path = "/workspace/dag_trigger.toml"

  # Cloud Build installs requirements.txt: function.txt, or with aws_sdk function-aws.txt (the same plus boto3, for
  # Amazon MWAA through STS AssumeRoleWithWebIdentity). scripts/package.py picks the same files.
  requirements = var.aws_sdk ? "requirements/function-aws.txt" : "requirements/function.txt"

  is_http     = var.trigger.type == "http"
  entry_point = local.is_http ? "trigger_http" : "trigger_dag"

  event_type = {
    gcs    = coalesce(var.trigger.event_type, "google.cloud.storage.object.v1.finalized")
    pubsub = "google.cloud.pubsub.topic.v1.messagePublished"
    http   = null
  }[var.trigger.type]
  trigger_region = coalesce(var.trigger_region, var.region)
  retry_policy   = var.retry_on_failure ? "RETRY_POLICY_RETRY" : "RETRY_POLICY_DO_NOT_RETRY"

  # Service account IDs are 6 to 30 characters: a name longer than 25 is cut to 20 and given 4 hex of its hash, so
  # "<short_name>-run" and "<short_name>-evt" always fit and two long names with the same start do not collide.
  short_name = length(var.name) <= 25 ? var.name : "${substr(var.name, 0, 20)}-${substr(sha256(var.name), 0, 4)}"

  # Bucket names are global: a hash of project, region and name makes a clash with anyone else's bucket unlikely.
  source_bucket_name = "${local.short_name}-src-${substr(sha256("${var.project}/${var.region}/${var.name}"), 0, 12)}"
  source_bucket      = var.source_bucket != null ? var.source_bucket : one(google_storage_bucket.source[*].name)

  labels = merge({ app = "dag-trigger" }, var.labels)

  # Without a config file the code reads its settings from the environment (shared/config.py from_environment). Its
  # deadline for all attempts of one event then defaults to a little under the function's timeout, so a slow Airflow
  # fails the delivery (and Eventarc redelivers it) rather than the platform killing the instance mid-request.
  default_deadline = var.timeout_seconds > 20 ? var.timeout_seconds - 10 : max(1, floor(var.timeout_seconds / 2))

  environment = merge(
    { for k, v in { AIRFLOW_DEADLINE_SECONDS = tostring(local.default_deadline) } : k => v if var.config_toml == null },
    var.environment_variables,
    { for k, v in { DAG_TRIGGER_CONFIG = local.config_path } : k => v if var.config_toml != null },
  )

  # secret_environment_variables, each with its secret's project and ID apart (the API wants them so).
  secrets = {
    for name, ref in var.secret_environment_variables : name => {
      project = try(regex("^projects/([^/]+)/secrets/", ref.secret)[0], var.project)
      secret  = regex("[^/]+$", ref.secret)
      version = ref.version
    }
  }
  # "PROJECT/SECRET" of every secret read, once each even when several variables read the same secret.
  secret_ids = toset([for ref in values(local.secrets) : "${ref.project}/${ref.secret}"])

  # Where the runtime service account gets roles/composer.user (see iam.tf), or null.
  composer_project = var.auth_mode == "composer" ? coalesce(var.composer_project, var.project) : var.composer_project

  # The environment the code reads without a config file, for the preconditions below.
  env_keys = keys(var.environment_variables)

  # Amazon MWAA, named by the environment or the config file: reached with AWS credentials (boto3), not Google's.
  mwaa = contains(local.env_keys, "MWAA_ENVIRONMENT") || try(length(regexall("(?m)^\\s*mwaa_environment\\s*=", var.config_toml)) > 0, false)
}

# ---------------------------------------------------------------------------------------------------------------------
# The source: shared/ and gcf_trigger/ (Python files only), main.py, requirements.txt and the optional config file.
# scripts/package.py builds the same zip in Python; tests/terraform checks the two file lists stay the same.
# ---------------------------------------------------------------------------------------------------------------------

data "archive_file" "source" {
  type             = "zip"
  output_path      = "${path.root}/.terraform/dag-trigger/${var.name}.zip"
  output_file_mode = "0644" # the zip's hash then depends on the code alone, not on local file modes

  dynamic "source" {
    for_each = fileset(local.source_root, "{shared,gcf_trigger}/**/*.py")
    content {
      content  = file("${local.source_root}/${source.value}")
      filename = source.value
    }
  }

  source {
    content  = local.main_py
    filename = "main.py"
  }

  source {
    content  = file("${local.source_root}/${local.requirements}")
    filename = "requirements.txt"
  }

  dynamic "source" {
    for_each = var.config_toml == null ? [] : [var.config_toml]
    content {
      content  = source.value
      filename = "dag_trigger.toml"
    }
  }

  lifecycle {
    precondition {
      condition     = contains(fileset(local.source_root, "gcf_trigger/*.py"), "gcf_trigger/main.py")
      error_message = "source_root (${local.source_root}) is not a dag-trigger checkout: it has no gcf_trigger/main.py."
    }
  }
}

resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62:Access logging is opt-in through source_bucket_log_bucket; the bucket is private and holds only the deployment zips Terraform writes, and its changes are in the Admin Activity audit log.
  count = var.source_bucket == null ? 1 : 0

  project                     = var.project
  name                        = local.source_bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Only zips built from the checkout: nothing to keep when the function goes.
  force_destroy = true
  labels        = local.labels

  versioning {
    enabled = true
  }

  # A code change uploads a new object (named by its MD5) and Terraform deletes the old one, which versioning keeps as
  # a noncurrent version: those go after 30 days. Cloud Run functions keeps its own copy of the deployed source.
  lifecycle_rule {
    condition {
      with_state                 = "ARCHIVED"
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  dynamic "logging" {
    for_each = var.source_bucket_log_bucket == null ? [] : [var.source_bucket_log_bucket]
    content {
      log_bucket        = logging.value
      log_object_prefix = local.source_bucket_name
    }
  }
}

resource "google_storage_bucket_object" "source" {
  bucket = local.source_bucket
  # Named by content: a code or config change is a new object, and so a new build and revision of the function.
  name         = "${var.name}/${data.archive_file.source.output_md5}.zip"
  source       = data.archive_file.source.output_path
  content_type = "application/zip"
}

# ---------------------------------------------------------------------------------------------------------------------
# The function (a Cloud Run service built from the source) and its one trigger
# ---------------------------------------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "this" {
  project     = var.project
  location    = var.region
  name        = var.name
  description = var.description
  labels      = local.labels

  build_config {
    runtime         = var.runtime
    entry_point     = local.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = var.available_memory
    timeout_seconds                = var.timeout_seconds
    max_instance_count             = var.max_instance_count
    min_instance_count             = var.min_instance_count
    ingress_settings               = var.ingress_settings
    all_traffic_on_latest_revision = true
    vpc_connector                  = var.vpc_connector
    vpc_connector_egress_settings  = var.vpc_connector == null ? null : var.vpc_connector_egress_settings
    service_account_email          = google_service_account.runtime.email
    environment_variables          = local.environment

    dynamic "secret_environment_variables" {
      for_each = local.secrets
      content {
        key        = secret_environment_variables.key
        project_id = secret_environment_variables.value.project
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }

  # A function has at most one event trigger (none for http); more triggers are more instances of this module.
  dynamic "event_trigger" {
    for_each = local.is_http ? [] : [var.trigger]
    content {
      trigger_region        = local.trigger_region
      event_type            = local.event_type
      pubsub_topic          = event_trigger.value.topic
      retry_policy          = local.retry_policy
      service_account_email = one(google_service_account.trigger[*].email)

      dynamic "event_filters" {
        for_each = event_trigger.value.type == "gcs" ? [event_trigger.value.bucket] : []
        content {
          attribute = "bucket"
          value     = event_filters.value
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.min_instance_count <= var.max_instance_count
      error_message = "min_instance_count must not exceed max_instance_count."
    }
    precondition {
      condition     = local.is_http || length(var.http_invokers) == 0
      error_message = "http_invokers is for an http trigger; an event trigger is invoked by its own trigger service account."
    }
    precondition {
      condition = var.config_toml != null || (
        contains(local.env_keys, "DAG_ID") && anytrue([for k in ["AIRFLOW_URL", "COMPOSER_ENVIRONMENT", "MWAA_ENVIRONMENT"] : contains(local.env_keys, k)])
      )
      error_message = "Configure the code: set config_toml, or environment_variables with DAG_ID and AIRFLOW_URL (or COMPOSER_ENVIRONMENT, or MWAA_ENVIRONMENT)."
    }
    precondition {
      condition     = !local.mwaa || var.aws_sdk
      error_message = "Amazon MWAA (MWAA_ENVIRONMENT, or mwaa_environment in config_toml) is called through boto3: set aws_sdk = true, so requirements.txt installs it."
    }
    precondition {
      condition     = !local.mwaa || var.auth_mode == "none"
      error_message = "Amazon MWAA is reached with AWS credentials (STS AssumeRoleWithWebIdentity with the function's Google ID token), not a Google auth mode: set auth_mode = \"none\", which grants the runtime service account no Google role."
    }
    precondition {
      condition     = !contains(local.env_keys, "WEB_IDENTITY_ROLE_ARN") || contains(local.env_keys, "MWAA_ENVIRONMENT")
      error_message = "environment_variables.WEB_IDENTITY_ROLE_ARN is the role that may call MWAA: set MWAA_ENVIRONMENT too."
    }
    precondition {
      condition     = var.config_toml != null || !contains(local.env_keys, "MWAA_ENVIRONMENT") || contains(local.env_keys, "AWS_REGION")
      error_message = "environment_variables.MWAA_ENVIRONMENT needs AWS_REGION (the MWAA environment's and STS's region): Cloud Run sets no AWS region, and botocore reads it from AWS_REGION."
    }
    precondition {
      condition     = lookup(var.environment_variables, "AIRFLOW_AUTH", var.auth_mode) == var.auth_mode
      error_message = "environment_variables.AIRFLOW_AUTH must equal auth_mode (${var.auth_mode}): auth_mode decides the runtime service account's roles."
    }
    precondition {
      condition     = try(tonumber(lookup(var.environment_variables, "AIRFLOW_DEADLINE_SECONDS", "0")) < var.timeout_seconds, false)
      error_message = "environment_variables.AIRFLOW_DEADLINE_SECONDS must be a number of seconds below timeout_seconds (${var.timeout_seconds}), or the platform may kill a delivery before the code gives up on it."
    }
    precondition {
      condition     = length(setintersection(local.env_keys, keys(var.secret_environment_variables))) == 0
      error_message = "A variable is in both environment_variables and secret_environment_variables."
    }
    precondition {
      condition     = !contains(["basic", "jwt"], var.auth_mode) || length(var.secret_environment_variables) > 0
      error_message = "auth_mode ${var.auth_mode} needs the password from Secret Manager: map it in secret_environment_variables (e.g. AIRFLOW_PASSWORD)."
    }
    precondition {
      condition     = var.composer_project == null || contains(["composer", "iap", "iap_jwt"], var.auth_mode)
      error_message = "composer_project grants roles/composer.user, which only auth_mode composer, iap and iap_jwt use."
    }
    precondition {
      condition     = var.iap_backend_service == null || contains(["iap", "iap_jwt"], var.auth_mode)
      error_message = "iap_backend_service grants roles/iap.httpsResourceAccessor, which only auth_mode iap and iap_jwt use."
    }
    precondition {
      condition     = !contains(["iap", "iap_jwt"], var.auth_mode) || var.iap_backend_service != null || var.composer_project != null
      error_message = "auth_mode ${var.auth_mode} needs iap_backend_service (Airflow behind an HTTPS load balancer with IAP), or composer_project for Composer 1."
    }
    precondition {
      condition     = var.trigger.type != "pubsub" || try(split("/", var.trigger.topic)[1] == var.project, false)
      error_message = "A pubsub trigger's topic must be in the function's project (${var.project}); Eventarc cannot subscribe across projects."
    }
  }

  # Deploying fails when the runtime service account cannot read a secret, and a gcs trigger is refused until the
  # Cloud Storage service agent may publish; the other grants are there before the first event.
  depends_on = [
    google_secret_manager_secret_iam_member.runtime_secret_accessor,
    google_project_iam_member.gcs_service_agent_publisher,
    google_project_iam_member.trigger_event_receiver,
    google_project_iam_member.runtime_composer_user,
    google_iap_web_backend_service_iam_member.runtime_iap_accessor,
    google_service_account_iam_member.runtime_signs_jwt,
  ]
}
