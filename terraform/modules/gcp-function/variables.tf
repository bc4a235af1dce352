# ---------------------------------------------------------------------------------------------------------------------
# Where and what
# ---------------------------------------------------------------------------------------------------------------------

variable "project" {
  type        = string
  description = "The project the function, its service accounts and (when the module creates it) its source bucket live in. A GCS trigger's bucket and a Pub/Sub trigger's topic must be in this project too (Eventarc's rule)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project ID (6 to 30 lowercase letters, digits and hyphens, starting with a letter), not a project number or name."
  }
}

variable "region" {
  type        = string
  description = "The region the function runs in, e.g. europe-west1. Put it next to Airflow: every event is one or more calls to its API."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1 (not a zone, not a multi-region)."
  }
}

variable "name" {
  type        = string
  description = "The function's name, which is also its Cloud Run service's name; the service accounts' IDs and the source bucket's name derive from it, so it must be unique in the project (not only in the region)."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,61}[a-z0-9]$", var.name))
    error_message = "name must be 2 to 63 lowercase letters, digits and hyphens, start with a letter and not end with a hyphen (Cloud Run's service name rule)."
  }
}

variable "description" {
  type        = string
  description = "The function's description, shown in the console."
  default     = "dag-trigger: turns cloud events into Apache Airflow DAG runs, exactly once"

  validation {
    condition     = length(var.description) <= 512
    error_message = "description must be at most 512 characters."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels for the function and the source bucket the module creates; app = dag-trigger is added unless set here."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.labels) : can(regex("^[a-z][-_a-z0-9]{0,62}$", k))])
    error_message = "labels keys must be 1 to 63 lowercase letters, digits, hyphens and underscores, starting with a letter."
  }

  validation {
    condition     = alltrue([for v in values(var.labels) : can(regex("^[-_a-z0-9]{0,63}$", v))])
    error_message = "labels values must be at most 63 lowercase letters, digits, hyphens and underscores."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Source and build
# ---------------------------------------------------------------------------------------------------------------------

variable "source_root" {
  type        = string
  description = "The dag-trigger repository checkout whose shared/, gcf_trigger/ and requirements/function.txt are packaged. Default: the checkout this module is in (three directories up), which is also right when the module is used through a git source."
  default     = null

  validation {
    condition     = var.source_root == null || can(regex("[^[:space:]]", var.source_root))
    error_message = "source_root must be a directory path, or null for the checkout this module is in."
  }
}

variable "source_bucket" {
  type        = string
  description = "An existing bucket to upload the source zip to (in the function's project, readable by the Cloud Functions service agent). Default (null): the module creates a private, versioned bucket for it."
  default     = null

  validation {
    condition     = var.source_bucket == null || can(regex("^[a-z0-9][-_.a-z0-9]{1,220}[a-z0-9]$", var.source_bucket))
    error_message = "source_bucket must be a bucket name (3 to 222 lowercase letters, digits, hyphens, underscores and dots), without gs://."
  }
}

variable "source_bucket_log_bucket" {
  type        = string
  description = "For the source bucket the module creates: a bucket to receive its usage and storage logs (Cloud Storage access logging). Default: none (object access is then recorded only if Cloud Storage Data Access audit logs are on)."
  default     = null

  validation {
    condition     = var.source_bucket_log_bucket == null || can(regex("^[a-z0-9][-_.a-z0-9]{1,220}[a-z0-9]$", var.source_bucket_log_bucket))
    error_message = "source_bucket_log_bucket must be a bucket name, without gs://."
  }
}

variable "runtime" {
  type        = string
  description = "The Cloud Run functions Python runtime. The code needs Python 3.11 or newer."
  default     = "python314"

  validation {
    condition     = can(regex("^python3(1[1-9]|[2-9][0-9])$", var.runtime))
    error_message = "runtime must be a Python runtime of 3.11 or newer, e.g. python314 (the code uses tomllib and datetime.UTC)."
  }
}

variable "build_service_account" {
  type        = string
  description = "The service account Cloud Build builds the function with, as projects/PROJECT/serviceAccounts/EMAIL. Default (null): the project's default build service account. It needs roles/cloudbuild.builds.builder (or logging.logWriter, artifactregistry.writer and read access to the source bucket); this module grants it nothing."
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/@]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must be projects/PROJECT/serviceAccounts/EMAIL."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Service
# ---------------------------------------------------------------------------------------------------------------------

variable "available_memory" {
  type        = string
  description = "Memory per instance, e.g. 256M or 512Mi (units k, M, G, Mi, Gi)."
  default     = "256M"

  validation {
    condition     = can(regex("^[1-9][0-9]*(k|M|G|Mi|Gi)$", var.available_memory))
    error_message = "available_memory must be a number followed by k, M, G, Mi or Gi, e.g. 256M."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "How long one delivery may run, in seconds (at most 540 for event-driven functions). Without config_toml the module sets AIRFLOW_DEADLINE_SECONDS a little below it unless environment_variables does, so the code gives up (and the event is redelivered) before the platform kills it."
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 540 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number from 1 to 540."
  }
}

variable "max_instance_count" {
  type        = number
  description = "The most instances at once: a bound on concurrent calls to Airflow's API."
  default     = 10

  validation {
    condition     = var.max_instance_count >= 1 && var.max_instance_count <= 1000 && floor(var.max_instance_count) == var.max_instance_count
    error_message = "max_instance_count must be a whole number from 1 to 1000."
  }
}

variable "min_instance_count" {
  type        = number
  description = "Instances kept warm (billed while idle). 0 scales to zero; events then wait for a cold start."
  default     = 0

  validation {
    condition     = var.min_instance_count >= 0 && floor(var.min_instance_count) == var.min_instance_count
    error_message = "min_instance_count must be a whole number, 0 or more."
  }
}

variable "ingress_settings" {
  type        = string
  description = "Who may reach the function's URL. ALLOW_INTERNAL_ONLY (default) admits Eventarc, Pub/Sub and Cloud Scheduler of the same project or VPC Service Controls perimeter, and the VPC; it still checks roles/run.invoker on every request."
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "vpc_connector" {
  type        = string
  description = "A Serverless VPC Access connector, projects/PROJECT/locations/REGION/connectors/NAME, for an Airflow reachable only inside a VPC network (Private IP Composer, an internal load balancer). Default: none."
  default     = null

  validation {
    condition     = var.vpc_connector == null || can(regex("^projects/[^/]+/locations/[^/]+/connectors/[^/]+$", var.vpc_connector))
    error_message = "vpc_connector must be projects/PROJECT/locations/REGION/connectors/NAME."
  }
}

variable "vpc_connector_egress_settings" {
  type        = string
  description = "With vpc_connector: PRIVATE_RANGES_ONLY (default: only private addresses go through the connector) or ALL_TRAFFIC (everything, e.g. to leave through Cloud NAT with a fixed address). Google APIs are reached either way."
  default     = "PRIVATE_RANGES_ONLY"

  validation {
    condition     = contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], var.vpc_connector_egress_settings)
    error_message = "vpc_connector_egress_settings must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Configuration of the code (shared/config.py)
# ---------------------------------------------------------------------------------------------------------------------

variable "config_toml" {
  type        = string
  description = "The dag-trigger configuration file's text (TOML: [airflow] and [[routes]]), e.g. file(\"dag_trigger.toml\"). It is packaged as dag_trigger.toml and DAG_TRIGGER_CONFIG points to it. Default (null): configure a single DAG with environment_variables instead (AIRFLOW_URL or COMPOSER_ENVIRONMENT, and DAG_ID)."
  default     = null

  validation {
    condition     = var.config_toml == null || can(regex("[^[:space:]]", var.config_toml))
    error_message = "config_toml must not be empty; leave it null to configure through environment_variables."
  }
}

variable "environment_variables" {
  type        = map(string)
  description = "Plain environment variables for the function: without config_toml, the single-DAG settings the code reads (AIRFLOW_URL or COMPOSER_ENVIRONMENT, DAG_ID, AIRFLOW_AUTH, AIRFLOW_USERNAME, IAP_CLIENT_ID, IAP_JWT_AUDIENCE, IAP_SERVICE_ACCOUNT, TRIGGER_BUCKET, TRIGGER_PREFIX, TRIGGER_SUFFIX, AIRFLOW_DEADLINE_SECONDS, ...). Never a password: use secret_environment_variables."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment_variables) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "environment_variables names must be letters, digits and underscores, not starting with a digit."
  }

  validation {
    condition     = length(setintersection(keys(var.environment_variables), ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"])) == 0
    error_message = "environment_variables must not set a name Cloud Run functions reserves (PORT, K_SERVICE, K_REVISION, K_CONFIGURATION, FUNCTION_TARGET, FUNCTION_SIGNATURE_TYPE)."
  }

  validation {
    condition     = alltrue([for k in keys(var.environment_variables) : !startswith(k, "X_GOOGLE_")])
    error_message = "environment_variables must not set X_GOOGLE_* names: Cloud Run functions reserves them."
  }

  validation {
    condition     = !contains(keys(var.environment_variables), "DAG_TRIGGER_CONFIG")
    error_message = "Do not set DAG_TRIGGER_CONFIG: pass the file's text as config_toml and the module packages it and points DAG_TRIGGER_CONFIG to it."
  }

  validation {
    condition     = alltrue([for k in keys(var.environment_variables) : !endswith(upper(k), "PASSWORD")])
    error_message = "A password must not be a plain environment variable (anyone with view access to the function reads it): put it in Secret Manager and map it with secret_environment_variables."
  }

  validation {
    condition     = length(setintersection(keys(var.environment_variables), ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS"])) == 0
    error_message = "environment_variables must not hold cloud keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, GOOGLE_APPLICATION_CREDENTIALS): the function is its runtime service account on Google Cloud, and reaches AWS with that identity through WEB_IDENTITY_ROLE_ARN (STS AssumeRoleWithWebIdentity)."
  }
}

variable "secret_environment_variables" {
  type        = map(object({ secret = string, version = optional(string, "latest") }))
  description = "Environment variables filled from Secret Manager when an instance starts, e.g. { AIRFLOW_PASSWORD = { secret = \"airflow-password\" } } for auth basic or jwt (the code reads the password from the variable password_env names, AIRFLOW_PASSWORD by default). secret is a secret ID in the function's project or projects/PROJECT/secrets/ID; version a number or latest. The runtime service account gets roles/secretmanager.secretAccessor on each of these secrets only."
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.secret_environment_variables) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "secret_environment_variables names must be letters, digits and underscores, not starting with a digit."
  }

  validation {
    condition     = length(setintersection(keys(var.secret_environment_variables), ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION", "FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "DAG_TRIGGER_CONFIG"])) == 0
    error_message = "secret_environment_variables must not set a reserved name (PORT, K_SERVICE, K_REVISION, K_CONFIGURATION, FUNCTION_TARGET, FUNCTION_SIGNATURE_TYPE) or DAG_TRIGGER_CONFIG."
  }

  validation {
    condition     = alltrue([for k in keys(var.secret_environment_variables) : !startswith(k, "X_GOOGLE_")])
    error_message = "secret_environment_variables must not set X_GOOGLE_* names: Cloud Run functions reserves them."
  }

  validation {
    condition     = alltrue([for v in values(var.secret_environment_variables) : can(regex("^(projects/[a-z0-9][-a-z0-9]*/secrets/)?[A-Za-z0-9_-]{1,255}$", v.secret))])
    error_message = "Each secret must be a Secret Manager secret ID (letters, digits, hyphens, underscores) or projects/PROJECT/secrets/ID, not a version's name."
  }

  validation {
    condition     = alltrue([for v in values(var.secret_environment_variables) : can(regex("^(latest|[1-9][0-9]*)$", v.version))])
    error_message = "Each version must be latest or a version number."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Trigger
# ---------------------------------------------------------------------------------------------------------------------

variable "trigger" {
  type        = object({ type = string, bucket = optional(string), event_type = optional(string), topic = optional(string) })
  description = <<-EOT
    What invokes the function; a function has exactly one trigger, so instantiate the module once per trigger.
    type = "gcs": Cloud Storage object events of bucket (in this project); event_type defaults to
    google.cloud.storage.object.v1.finalized (also: .deleted, .archived, .metadataUpdated).
    type = "pubsub": messages published to topic, projects/PROJECT/topics/TOPIC (in this project), including
    Cloud Storage's Pub/Sub notifications. Both deliver CloudEvents to the entry point trigger_dag.
    type = "http": no event trigger; the entry point is trigger_http, and http_invokers may call it.
  EOT

  validation {
    condition     = contains(["gcs", "pubsub", "http"], var.trigger.type)
    error_message = "trigger.type must be gcs, pubsub or http."
  }

  validation {
    condition     = var.trigger.type != "gcs" || (can(regex("^[a-z0-9][-_.a-z0-9]{1,220}[a-z0-9]$", var.trigger.bucket)) && var.trigger.topic == null)
    error_message = "A gcs trigger needs bucket (a bucket name, without gs://) and no topic."
  }

  validation {
    condition     = var.trigger.type != "gcs" || var.trigger.event_type == null || can(regex("^google\\.cloud\\.storage\\.object\\.v1\\.(finalized|deleted|archived|metadataUpdated)$", var.trigger.event_type))
    error_message = "A gcs trigger's event_type must be google.cloud.storage.object.v1.finalized, .deleted, .archived or .metadataUpdated."
  }

  validation {
    condition     = var.trigger.type != "pubsub" || (can(regex("^projects/[^/]+/topics/[^/]+$", var.trigger.topic)) && var.trigger.bucket == null)
    error_message = "A pubsub trigger needs topic as projects/PROJECT/topics/TOPIC, and no bucket."
  }

  validation {
    condition     = var.trigger.type != "pubsub" || var.trigger.event_type == null || var.trigger.event_type == "google.cloud.pubsub.topic.v1.messagePublished"
    error_message = "A pubsub trigger's event_type is google.cloud.pubsub.topic.v1.messagePublished; leave it unset."
  }

  validation {
    condition     = var.trigger.type != "http" || (var.trigger.bucket == null && var.trigger.topic == null && var.trigger.event_type == null)
    error_message = "An http trigger takes no bucket, topic or event_type."
  }
}

variable "trigger_region" {
  type        = string
  description = "Where the Eventarc trigger lives. For a gcs trigger it must be the bucket's location, lowercase (its region, or us, eu, asia, nam4, eur4 ... for a multi- or dual-region bucket), or no event arrives; for pubsub the function's region is usual. Default (null): the function's region."
  default     = null

  validation {
    condition     = var.trigger_region == null || can(regex("^[a-z]+[0-9]*(-[a-z]+[0-9]+)?$", var.trigger_region))
    error_message = "trigger_region must be a lowercase location such as europe-west1, us or eur4."
  }
}

variable "retry_on_failure" {
  type        = bool
  description = "Whether Eventarc redelivers an event the function failed on (for up to 24 hours, with backoff). Keep it true: dag-trigger's delivery policy depends on redelivery, since a failed event is only retried by the platform, and a redelivered event makes no second run (the run ID derives from the event). Ignored for http triggers."
  default     = true
}

variable "http_invokers" {
  type        = list(string)
  description = "With an http trigger: the principals that may call it, e.g. [\"serviceAccount:scheduler@PROJECT.iam.gserviceaccount.com\"] for Cloud Scheduler (with an OIDC token). Each gets roles/run.invoker on this function's Cloud Run service only."
  default     = []

  validation {
    condition     = alltrue([for m in var.http_invokers : can(regex("^(serviceAccount|user|group|domain|principal|principalSet):[^[:space:]]+$", m))])
    error_message = "http_invokers must be IAM principals such as serviceAccount:EMAIL, user:EMAIL or group:EMAIL; allUsers and allAuthenticatedUsers are not accepted."
  }
}

variable "grant_gcs_service_agent_publisher" {
  type        = bool
  description = "With a gcs trigger: grant the project's Cloud Storage service agent roles/pubsub.publisher on the project, which Eventarc's Cloud Storage triggers need. Set false when it is granted elsewhere: the binding is the same for every function in the project, and the module that created it removes it on destroy."
  default     = true
}

# ---------------------------------------------------------------------------------------------------------------------
# How the function reaches Airflow (the runtime service account's roles)
# ---------------------------------------------------------------------------------------------------------------------

variable "auth_mode" {
  type        = string
  description = "How the code authenticates to Airflow (shared/config.py's auth, as set by AIRFLOW_AUTH or config_toml); it decides the runtime service account's roles. composer: roles/composer.user on composer_project. iap: roles/iap.httpsResourceAccessor on iap_backend_service. iap_jwt: that, and roles/iam.serviceAccountTokenCreator on itself (to sign JWTs). basic, jwt: a password from secret_environment_variables. none: nothing; also the mode for Amazon MWAA (MWAA_ENVIRONMENT with aws_sdk), which the function reaches with AWS credentials for its own ID token and so needs no Google role."

  validation {
    condition     = contains(["none", "basic", "jwt", "composer", "iap", "iap_jwt"], var.auth_mode)
    error_message = "auth_mode must be one of none, basic, jwt, composer, iap, iap_jwt (write auto's resolved mode; token_file has no file to read on Cloud Run functions)."
  }
}

variable "aws_sdk" {
  type        = bool
  description = "Package boto3 (requirements/function-aws.txt instead of requirements/function.txt): for Amazon MWAA (MWAA_ENVIRONMENT), reached with the runtime service account's Google-signed ID token through STS AssumeRoleWithWebIdentity (WEB_IDENTITY_ROLE_ARN, WEB_IDENTITY_AUDIENCE, AWS_REGION). It grants nothing on Google Cloud: fetching the account's own ID token from the metadata server needs no role. The AWS role must trust the account's unique_id (runtime_service_account_unique_id); see terraform/modules/aws-role-for-gcp."
  default     = false
}

variable "composer_project" {
  type        = string
  description = "The project of the Cloud Composer environment. auth_mode composer: the runtime service account gets roles/composer.user there (default: var.project). iap or iap_jwt: set it for Composer 1 (whose web server's IAP lets in composer.user holders) or when COMPOSER_ENVIRONMENT is read through the Composer API."
  default     = null

  validation {
    condition     = var.composer_project == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.composer_project))
    error_message = "composer_project must be a project ID."
  }
}

variable "iap_backend_service" {
  type        = object({ project = string, name = string })
  description = "auth_mode iap or iap_jwt: the IAP-protected backend service of the HTTPS load balancer in front of Airflow (global, the name of google_compute_backend_service). The runtime service account gets roles/iap.httpsResourceAccessor on it only."
  default     = null

  validation {
    condition = var.iap_backend_service == null || (
      can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.iap_backend_service.project)) && can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.iap_backend_service.name))
    )
    error_message = "iap_backend_service must be { project = PROJECT_ID, name = BACKEND_SERVICE_NAME }."
  }
}
