# GCS (Google Cloud) -> Cloud Run function (Google Cloud) -> STS AssumeRoleWithWebIdentity -> MWAA (AWS). No key
# anywhere: the function asks the metadata server for its runtime service account's Google-signed ID token (audience
# sts.amazonaws.com), and STS exchanges it for the role's temporary credentials, with which it calls InvokeRestApi.
#
# Who trusts whom:
#   the AWS role        trusts  accounts.google.com, only for a token whose sub and azp are the runtime service
#                               account's unique ID and whose aud is the audience;
#   the AWS role        may     airflow:InvokeRestApi on the one environment, as the one Airflow role;
#   the function's service account holds no Google role at all (its own ID token needs none).

locals {
  # The APIs the function uses.
  apis = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
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

# New objects in the bucket -> one run of the DAG each, on MWAA. The module creates the function's runtime service
# account (google_service_account, NAME-run): auth_mode "none" grants it nothing on Google Cloud, and aws_sdk packages
# boto3. The role below trusts that account's unique ID.
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

  auth_mode = "none"
  aws_sdk   = true
  # WEB_IDENTITY_ROLE_ARN, WEB_IDENTITY_AUDIENCE, MWAA_ENVIRONMENT, MWAA_TRANSPORT and AWS_REGION from the role's
  # module, so the function's configuration and the role's trust and permission cannot disagree.
  environment_variables = merge(
    module.mwaa_role.function_environment,
    { for name, value in { TRIGGER_PREFIX = var.prefix } : name => value if value != null },
    {
      DAG_ID         = var.dag_id
      TRIGGER_BUCKET = var.bucket
    },
  )

  depends_on = [google_project_service.apis]
}

# The AWS side: a role for that one service account, allowed InvokeRestApi on the one environment as one Airflow role.
module "mwaa_role" {
  source = "../../modules/aws-role-for-gcp"

  name                             = var.aws_role_name
  google_service_account_unique_id = module.gcs_trigger.runtime_service_account_unique_id
  audience                         = var.audience
  mwaa_environment                 = var.mwaa_environment
  mwaa_airflow_role                = var.mwaa_airflow_role
}
