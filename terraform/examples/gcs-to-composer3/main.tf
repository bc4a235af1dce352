locals {
  composer_project = split("/", var.composer_environment)[1]

  # Without a config file, the single-DAG settings the code reads from the environment (shared/config.py).
  single_dag_environment = {
    COMPOSER_ENVIRONMENT = var.composer_environment
    AIRFLOW_AUTH         = "composer"
    DAG_ID               = var.dag_id
    TRIGGER_PREFIX       = var.prefix
  }
  gcs_environment = { for k, v in local.single_dag_environment : k => v if v != null && var.config_file == null }

  pubsub_single_dag_environment = {
    COMPOSER_ENVIRONMENT = var.composer_environment
    AIRFLOW_AUTH         = "composer"
    DAG_ID               = try(coalesce(var.pubsub_dag_id, var.dag_id), null)
  }
  pubsub_environment = { for k, v in local.pubsub_single_dag_environment : k => v if v != null }

  # The APIs the functions use.
  apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "composer.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
  ]
}

# Left enabled on destroy: other things in the project may use them.
resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

# New objects in the landing bucket -> one run of the DAG each, on Composer 3, as the function's own service account.
module "gcs_trigger" {
  source = "../../modules/gcp-function"

  project = var.project
  region  = var.region
  name    = var.name

  trigger = {
    type   = "gcs"
    bucket = var.bucket
  }
  trigger_region = var.bucket_location

  auth_mode             = "composer"
  composer_project      = local.composer_project
  environment_variables = local.gcs_environment
  config_toml           = var.config_file == null ? null : file(var.config_file)
  vpc_connector         = var.vpc_connector

  depends_on = [google_project_service.apis]
}

# Optional: a topic's messages -> another DAG. A function has one trigger, so this is a second instance of the
# module, with its own service accounts; it shares the first one's source bucket.
module "pubsub_trigger" {
  source = "../../modules/gcp-function"
  count  = var.pubsub_topic == null ? 0 : 1

  project       = var.project
  region        = var.region
  name          = "${var.name}-pubsub"
  source_bucket = module.gcs_trigger.source_bucket

  trigger = {
    type  = "pubsub"
    topic = var.pubsub_topic
  }

  auth_mode             = "composer"
  composer_project      = local.composer_project
  environment_variables = local.pubsub_environment
  vpc_connector         = var.vpc_connector

  depends_on = [google_project_service.apis]
}
